package agent

import (
	"context"
	"encoding/json"
	"fmt"
)

// Streaming reports whether the supervisor sent the task as a stream (`"stream":true`): Send then sends each
// piece as a chunk at once. False for a v1 caller's task, and for a Request that Run did not make.
func (r *Request) Streaming() bool {
	return r.t != nil && r.t.streaming
}

// Send sends one piece of the task's result, data encoded with encoding/json (a json.RawMessage as it is).
//
// For a streaming task it is sent at once as a chunk, `{"id","type":"chunk","data"}`, after the chunks sent
// before it and before the final response; Send waits while Options.MaxQueuedBytes of output are waiting to be
// written. For a task sent without `"stream":true` nothing is sent: the piece is kept, and when the handler
// returns without error after sending any, the result is the list of the pieces, in the order sent, instead of
// what it returned (a chunk is never sent for such a task).
//
// Once the task's context is done (cancelled upstream, past the drain bound, the supervisor gone, or the handler
// returned) Send sends and keeps nothing and returns ctx.Err(), also while it waits. It returns ErrClosed when the
// output is closed, a *SerializationError when data cannot be encoded, and ErrNotServed for a Request that Run
// did not make. It may be called from any goroutine; calls from several at once are sent in some order.
func (r *Request) Send(data any) error {
	t := r.t
	if t == nil {
		return ErrNotServed
	}
	if err := t.ctx.Err(); err != nil {
		return err
	}
	encoded, err := encode("chunk", data)
	if err != nil {
		return err
	}
	if !t.streaming {
		t.mu.Lock()
		defer t.mu.Unlock()
		if err := t.ctx.Err(); err != nil {
			return err
		}
		t.pieces = append(t.pieces, encoded)
		return nil
	}
	return t.srv.out.sendWhenRoom(t.ctx, chunkLine(t.rawID, encoded))
}

// Checkpoint sends the task's checkpoint, `{"type":"checkpoint","id","data"}`: the supervisor keeps the latest
// while the task is in flight, and hands it to the next incarnation (Agent.RestoredRequests) if the agent dies
// first. It is sent whether or not the task streams. It waits, and fails, as Send does.
func (r *Request) Checkpoint(data any) error {
	t := r.t
	if t == nil {
		return ErrNotServed
	}
	if err := t.ctx.Err(); err != nil {
		return err
	}
	encoded, err := encode("checkpoint", data)
	if err != nil {
		return err
	}
	return t.srv.out.sendWhenRoom(t.ctx, checkpointLine(t.rawID, encoded))
}

// Publish hands a task to a topic of the supervision tree (protocol 1.2): `{"type":"publish","topic","payload"}`,
// payload encoded with encoding/json (a json.RawMessage as it is, nil as null). The supervisor sends no reply. It is
// Agent.Publish bound to the task's context, as Send is: it waits while Options.MaxQueuedBytes of output are
// waiting to be written, and once the context is done (cancelled upstream, the handler returned) it sends nothing
// and returns ctx.Err(); a goroutine that outlives the handler publishes with req.Agent().Publish. It returns
// ErrEmptyTopic for an empty topic and a *SerializationError for a payload that cannot be encoded (nothing is sent,
// the agent goes on), ErrClosed when the output is closed, ErrNotServed for a Request that Run did not make.
func (r *Request) Publish(topic string, payload any) error {
	t := r.t
	if t == nil {
		return ErrNotServed
	}
	line, err := publishOf(topic, payload)
	if err != nil {
		return err
	}
	return t.srv.out.sendEachWhenRoom(t.ctx, line)
}

// Publish hands a task to a topic of the supervision tree (protocol 1.2): `{"type":"publish","topic","payload"}`,
// payload encoded with encoding/json (a json.RawMessage as it is, nil as null); the supervisor sends no reply. From
// any goroutine, in a handler or not. Called before Run it never waits: each publish is sent right after the ready
// line, in order. Afterwards it waits while Options.MaxQueuedBytes of output are waiting to be written, and returns
// ErrClosed once the output is closed. It returns ErrEmptyTopic for an empty topic and a *SerializationError for a
// payload that cannot be encoded: nothing is sent, and the agent goes on.
func (a *Agent) Publish(topic string, payload any) error {
	if a == nil {
		return ErrNotServed
	}
	line, err := publishOf(topic, payload)
	if err != nil {
		return err
	}
	return a.s.out.sendEachWhenRoom(nil, line)
}

// publishOf is the line of a publish, or why there is none.
func publishOf(topic string, payload any) ([]byte, error) {
	if topic == "" {
		return nil, ErrEmptyTopic
	}
	encoded, err := encode("publish payload", payload)
	if err != nil {
		return nil, err
	}
	return publishLine(topic, encoded), nil
}

// Restored is Agent.Restored: the agent checkpoint this incarnation started from, nil when none.
func (r *Request) Restored() json.RawMessage {
	return r.Agent().Restored()
}

// Agent is the agent serving the request; nil for a Request that Run did not make (its methods then do nothing
// and say so).
func (r *Request) Agent() *Agent {
	if r.t == nil {
		return nil
	}
	return r.t.srv.agent
}

// Checkpoint sends the agent's checkpoint, `{"type":"checkpoint","data"}`: the supervisor keeps the latest, across
// restarts of the agent, and sends it to the next incarnation (Restored). Called before Run, it never waits: the
// latest such checkpoint is sent right after the ready line (the ones before it are not). Afterwards it waits while Options.MaxQueuedBytes of output are waiting to be written, and returns
// ErrClosed once the output is closed, a *SerializationError when data cannot be encoded.
func (a *Agent) Checkpoint(data any) error {
	if a == nil {
		return ErrNotServed
	}
	encoded, err := encode("checkpoint", data)
	if err != nil {
		return err
	}
	return a.s.out.sendWhenRoom(nil, checkpointLine(nil, encoded))
}

// Restored is the `data` of the last `restore` message (the agent checkpoint this incarnation started from), as
// the supervisor sent it; nil when none came (or it had no data). The supervisor sends it right after ready,
// before any task, so it is settled when the first task's handler runs; before that it is nil until it comes.
func (a *Agent) Restored() json.RawMessage {
	if a == nil {
		return nil
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.s.restored
}

// RestoredRequests is the `requests` of the last `restore` message: the checkpoints of the requests that were in
// flight when the last incarnation died, by their old ids (those requests failed; the caller decides whether to
// send them again, under new ids). A copy; nil when none came.
func (a *Agent) RestoredRequests() map[string]json.RawMessage {
	if a == nil {
		return nil
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.s.restoredRequests == nil {
		return nil
	}
	requests := make(map[string]json.RawMessage, len(a.s.restoredRequests))
	for id, data := range a.s.restoredRequests {
		requests[id] = data
	}
	return requests
}

// StreamHandler adapts a function that produces its result in pieces, writing each one to out, to a Handler: each
// piece goes through Request.Send. For a streaming task the pieces are chunks and the final result is null; for a
// v1 caller's task the result is the list of the pieces (`[]` for none). f must not close out (the adapter does,
// when f returns) and must not keep it after returning; it should stop when ctx is done: a piece it sends after
// that, or after one failed to send, is read and dropped, and ctx is cancelled once a piece fails (it cannot be
// encoded, or the output is closed). The first failure of a piece, else f's error, is the task's error.
func StreamHandler(f func(ctx context.Context, req *Request, out chan<- any) error) Handler {
	return func(ctx context.Context, req *Request) (any, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pieces := make(chan any)
		failed := make(chan error, 1)
		go func() {
			var first error
			for piece := range pieces {
				if first == nil {
					if first = sendRecovering(req, piece); first != nil {
						cancel()
					}
				}
			}
			failed <- first
		}()
		err := func() error {
			defer close(pieces)
			return f(ctx, req, pieces)
		}()
		if sendErr := <-failed; sendErr != nil {
			err = sendErr // what f returned is most likely the cancellation this caused
		}
		if err != nil {
			return nil, err
		}
		if !req.Streaming() {
			return json.RawMessage("[]"), nil // replaced by the list of the pieces when there are any
		}
		return nil, nil
	}
}

// sendRecovering is req.Send, with a panic (a MarshalJSON that panics) as an error: it runs on a goroutine of
// the adapter's, where a panic would end the process.
func sendRecovering(req *Request, piece any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("agent: encoding a piece panicked: %s", describePanic(v))
		}
	}()
	return req.Send(piece)
}
