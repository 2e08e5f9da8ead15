// Command echo-agent is an example agent and the Go adapter's conformance target. Its payloads:
//
//	{"op":"echo","value":X}          returns X
//	{"op":"sleep","ms":N,"value":X}  sleeps N ms and returns X; cancelled, returns the context's error
//	{"op":"fail","message":S}        returns an error with message S (type *errors.errorString)
//	{"op":"print","text":S}          fmt.Println(S), to stdout (which the adapter points at stderr); "printed"
//	{"op":"spawn","text":S}          runs sh -c 'echo "$1"' sh S with stdout inherited, waits; "spawned"
//	{"op":"wasCancelled"}            whether the most recent sleep was cut short by a cancel
//	{"op":"stream","n":N,"value":X}  sends N pieces {"i":0}..{"i":N-1} with req.Send, then returns X: a task sent
//	                                 with "stream":true gets N chunks and then X; a v1 task gets the list of the
//	                                 N pieces (X when N is 0). "ms":M waits M ms before each piece. Stops at
//	                                 the first failed Send (cancelled), returning its error
//	{"op":"checkpoint","data":D}     sends the agent checkpoint D (null without data), returns "checkpointed";
//	                                 with "request":true, the task's own checkpoint instead
//	{"op":"restored"}                the data of the last restore message, null when none came
//	{"op":"publish","topic":T,"payload":P}  req.Publish(T, P) (protocol 1.2), returns "published"; an empty T is
//	                                 agent.ErrEmptyTopic, an error response
//	anything else                    returned as it came
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

func main() {
	agent.Serve(handle)
}

func handle(ctx context.Context, req *agent.Request) (any, error) {
	var fields map[string]json.RawMessage
	if json.Unmarshal(req.Payload, &fields) != nil {
		return req.Payload, nil // not an object
	}
	var op string
	if json.Unmarshal(fields["op"], &op) != nil {
		return req.Payload, nil
	}
	switch op {
	case "echo":
		return value(fields), nil
	case "sleep":
		var ms float64
		if err := json.Unmarshal(fields["ms"], &ms); err != nil {
			return nil, fmt.Errorf("sleep: ms must be a number of milliseconds: %w", err)
		}
		if err := sleep(ctx, time.Duration(ms*float64(time.Millisecond))); err != nil {
			return nil, err
		}
		return value(fields), nil
	case "fail":
		var message string
		if err := json.Unmarshal(fields["message"], &message); err != nil {
			return nil, fmt.Errorf("fail: message must be a string: %w", err)
		}
		return nil, errors.New(message)
	case "print":
		text, err := textOf(fields)
		if err != nil {
			return nil, err
		}
		fmt.Println(text)
		return "printed", nil
	case "spawn":
		text, err := textOf(fields)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command("sh", "-c", `echo "$1"`, "sh", text)
		cmd.Stdout = os.Stdout // inherited: fd 1, which the adapter points at stderr
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, err
		}
		return "spawned", nil
	case "wasCancelled":
		return lastSleep.wasCancelled(), nil
	case "stream":
		return stream(ctx, req, fields)
	case "checkpoint":
		var request bool
		if raw, ok := fields["request"]; ok {
			if err := json.Unmarshal(raw, &request); err != nil {
				return nil, fmt.Errorf("checkpoint: request must be a boolean: %w", err)
			}
		}
		data, ok := fields["data"]
		if !ok {
			data = json.RawMessage("null")
		}
		var err error
		if request {
			err = req.Checkpoint(data)
		} else {
			err = req.Agent().Checkpoint(data)
		}
		if err != nil {
			return nil, err
		}
		return "checkpointed", nil
	case "restored":
		if restored := req.Restored(); restored != nil {
			return restored, nil
		}
		return nil, nil
	case "publish":
		var topic string
		if err := json.Unmarshal(fields["topic"], &topic); err != nil {
			return nil, fmt.Errorf("publish: topic must be a string: %w", err)
		}
		payload, ok := fields["payload"]
		if !ok {
			payload = json.RawMessage("null")
		}
		if err := req.Publish(topic, payload); err != nil {
			return nil, err
		}
		return "published", nil
	}
	return req.Payload, nil
}

// stream sends n pieces {"i":0}..{"i":n-1}, waiting ms before each one, then returns the payload's value.
func stream(ctx context.Context, req *agent.Request, fields map[string]json.RawMessage) (any, error) {
	var n float64
	if err := json.Unmarshal(fields["n"], &n); err != nil || n < 0 || n != float64(int64(n)) {
		return nil, fmt.Errorf("stream: n must be a whole number of pieces, 0 or more (got %s)", fields["n"])
	}
	var ms float64
	if raw, ok := fields["ms"]; ok {
		if err := json.Unmarshal(raw, &ms); err != nil {
			return nil, fmt.Errorf("stream: ms must be a number of milliseconds: %w", err)
		}
	}
	for i := int64(0); i < int64(n); i++ {
		if ms > 0 {
			timer := time.NewTimer(time.Duration(ms * float64(time.Millisecond)))
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return nil, ctx.Err()
			}
		}
		if err := req.Send(json.RawMessage(`{"i":` + strconv.FormatInt(i, 10) + `}`)); err != nil {
			return nil, err
		}
	}
	return value(fields), nil
}

// value is the payload's "value" (null when there is none).
func value(fields map[string]json.RawMessage) json.RawMessage {
	if v, ok := fields["value"]; ok {
		return v
	}
	return json.RawMessage("null")
}

func textOf(fields map[string]json.RawMessage) (string, error) {
	var text string
	if err := json.Unmarshal(fields["text"], &text); err != nil {
		return "", fmt.Errorf("text must be a string: %w", err)
	}
	return text, nil
}

// A sleep's outcome is decided once, under a lock: when the timer fires, when the context is cancelled, or when
// wasCancelled asks about a sleep whose context is already cancelled (the cancel has been read, but the sleeping
// goroutine has not woken yet), whichever comes first.
type sleepState int

const (
	sleeping sleepState = iota
	completed
	cancelled
)

type sleepRecord struct {
	mu    sync.Mutex
	ctx   context.Context
	state sleepState
}

var lastSleep = &sleepTracker{}

type sleepTracker struct {
	mu     sync.Mutex
	latest *sleepRecord // the sleep that started last
}

func (t *sleepTracker) wasCancelled() bool {
	t.mu.Lock()
	r := t.latest
	t.mu.Unlock()
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == sleeping && r.ctx.Err() != nil {
		r.state = cancelled
	}
	return r.state == cancelled
}

func sleep(ctx context.Context, d time.Duration) error {
	r := &sleepRecord{ctx: ctx}
	lastSleep.mu.Lock()
	lastSleep.latest = r
	lastSleep.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == sleeping {
		if ctx.Err() != nil {
			r.state = cancelled
		} else {
			r.state = completed
		}
	}
	if r.state == cancelled {
		return ctx.Err()
	}
	return nil
}
