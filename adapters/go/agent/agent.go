// Package agent runs a Go function as an agent of effect-agent-supervisor: it speaks the wire protocol (v1 with the
// 1.1 features "stream" and "checkpoint" and the 1.2 feature "publish"; newline-delimited JSON on stdin/stdout, see
// docs/PROTOCOL.md) and calls the function once per task, many tasks at once.
//
//	func main() {
//		agent.Serve(func(ctx context.Context, req *agent.Request) (any, error) {
//			var in struct{ Text string `json:"text"` }
//			if err := req.Decode(&in); err != nil {
//				return nil, err
//			}
//			return map[string]any{"upper": strings.ToUpper(in.Text)}, nil
//		})
//	}
//
// What Serve does, as the Python adapter (adapters/python/supervisor_adapter.py) does:
//
//   - `{"type":"ready","protocol":1,"features":["stream","checkpoint","publish"]}` is the first line out, written as
//     soon as Serve starts.
//   - Each task runs in a goroutine of its own, at most Options.MaxConcurrency (32) in the handler at once; the
//     others wait their turn. Responses go out in completion order.
//   - Pings are answered by the goroutine that reads stdin, whatever the handlers do:
//     `{"health":{"uptime_seconds","total_requests","memory_mb","cpu_percent"}}`, memory from VmRSS in
//     /proc/self/status (getrusage's peak elsewhere), CPU over the interval since the previous ping.
//   - `cancel` cancels that task's context; its response, if the handler still returns one, is not sent, nor any
//     chunk or checkpoint of it from then on. While every slot is held by a handler cancelled so that has not
//     returned (one that ignores its ctx), no task can run: pings are answered with an error of type
//     "AdapterStuck", so that the supervisor's heartbeat restarts the agent.
//   - A returned error becomes `{"id","status":"error","error":{"message","type","stack"}}`: type is the error's Go
//     type (`*errors.errorString`), or what its ErrorType method says (see ErrorTyper); stack is `%+v` of the
//     error. A panic is an error response of type "panic" with the goroutine's stack, never a crash.
//   - `shutdown`: tasks that arrive after it are refused (type "AdapterShuttingDown"), the tasks in flight finish
//     and are answered, then the process exits 0. Past Options.DrainTimeout the contexts of the tasks still
//     running are cancelled, and the process exits 0.5 s later at the latest.
//   - stdin EOF without `shutdown` means the supervisor is gone and nobody can receive a result: the tasks in
//     flight are cancelled, get 0.5 s to return, and the process exits within 1 s: code 4 when there were any
//     (work was lost), 0 when there were none. stdin EOF after `shutdown` changes nothing.
//   - A line may be of any length. Lines that are not UTF-8 JSON objects, or not protocol messages, are reported
//     on stderr and ignored; so are messages of a type the adapter does not know (reported once per type). When
//     stdout fails (the supervisor's reader is gone), Serve drains and exits 0.
//   - stdout carries the protocol only: Serve keeps a private duplicate of file descriptor 1 for it and points
//     fd 1 at stderr (and fd 0 at /dev/null), so fmt.Println, and a child process that inherits fd 1, write to
//     stderr. (On Solaris, Windows and other systems without dup2 in package syscall, only os.Stdout is
//     redirected.)
//
// # Streaming (protocol 1.1, feature "stream")
//
// A task the supervisor sent with `"stream":true` (Request.Streaming) may send its result in pieces:
// Request.Send sends each piece at once as `{"id","type":"chunk","data"}`, and what the handler returns is the
// final response, after the chunks. For a task sent without it (a v1 caller), Send sends nothing: it collects the
// pieces, and when the handler returns without error after sending any, the result is the list of the pieces (the
// value the handler returned is dropped; a handler that wants another answer for a v1 caller asks Streaming).
// StreamHandler adapts a function that writes its pieces to a channel.
//
// Chunks go out through the one writer, in the order Send was called, as whole lines. Send is flow-controlled:
// it waits while Options.MaxQueuedBytes or more of output are waiting to be written, so a producer faster than
// the supervisor's reader waits for it instead of filling memory. Once the task's context is done (cancelled
// upstream, past the drain bound, the supervisor gone, or the handler returned) Send sends nothing more and
// returns ctx.Err().
//
// # Checkpoints (protocol 1.1, feature "checkpoint")
//
// Request.Checkpoint sends `{"type":"checkpoint","id","data"}`, the task's checkpoint (the supervisor keeps the
// latest while the task is in flight); Agent.Checkpoint, `{"type":"checkpoint","data"}`, the agent's, which the
// supervisor keeps across restarts and hands to the next incarnation in a `restore` message right after its
// ready: Agent.Restored (and Request.Restored) is that data, and Agent.RestoredRequests the checkpoints of the
// requests that were in flight when the last incarnation died. A restore is read before any task that follows
// it, so a handler always sees it. Checkpoints are flow-controlled as Send is. Use New for an Agent before Run
// starts (a worker goroutine of your own), or Request.Agent in a handler.
//
// # Publish (protocol 1.2, feature "publish")
//
// Agent.Publish sends `{"type":"publish","topic","payload"}`: a task for a topic of the supervision tree, which the
// supervisor hands to the topic's subscribers; it sends no reply. Request.Publish is the same, bound to the task's
// context as Send is (it gives up with ctx.Err() once that is done); a goroutine that outlives its handler uses
// req.Agent().Publish. An empty topic is ErrEmptyTopic, a payload encoding/json rejects a *SerializationError:
// nothing is sent, and the agent goes on. Publishes are flow-controlled as Send is; called before Run,
// Agent.Publish never waits: each one is sent right after the ready line, in order.
//
// Two things no adapter can catch: os.Exit in a handler ends the agent, and a panic in a goroutine that a handler
// starts crashes it (the supervisor restarts it).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// ProtocolVersion is the wire protocol version announced in the ready line.
const ProtocolVersion = 1

// The protocol 1.1 and 1.2 features the adapter speaks, all announced in the ready line.
const (
	FeatureStream     = "stream"
	FeatureCheckpoint = "checkpoint"
	FeaturePublish    = "publish"
)

var announced = []string{FeatureStream, FeatureCheckpoint, FeaturePublish}

// Exit codes of Serve, which Run returns.
const (
	// ExitOK: after `shutdown` (drained), after stdout failed, or after stdin EOF with nothing in flight.
	ExitOK = 0
	// ExitAbandoned: stdin EOF without `shutdown` while tasks were in flight; they were cancelled.
	ExitAbandoned = 4
)

// Defaults of Options.
const (
	DefaultMaxConcurrency = 32
	// DefaultDrainTimeout is a little under the supervisor's default gracefulTimeout (5 s), so that handlers see
	// their context cancelled, and can clean up, before the supervisor sends SIGTERM.
	DefaultDrainTimeout = 4 * time.Second
	// DefaultMaxQueuedBytes: 1 MiB of output waiting to be written before Send and Checkpoint wait.
	DefaultMaxQueuedBytes = 1 << 20
)

var (
	// ErrClosed is returned by Send and Checkpoint once the protocol's output has failed (the supervisor's reader
	// is gone) or Run has ended.
	ErrClosed = errors.New("agent: the protocol output is closed")
	// ErrNotServed is returned by Send and Checkpoint of a Request that Run did not make (one built in a unit
	// test), and by the methods of a nil *Agent.
	ErrNotServed = errors.New("agent: not served by Run")
	// ErrEmptyTopic is returned by Publish for an empty topic: nothing is sent.
	ErrEmptyTopic = errors.New("agent: a publish needs a non-empty topic")
)

// Request is one task.
type Request struct {
	// ID is the supervisor's id of the task, unique among the tasks in flight.
	ID string
	// Payload is the task's payload as the supervisor sent it: the value given to handleEvent or call, as JSON
	// (`null` when there was none).
	Payload json.RawMessage
	// Key is the caller's idempotency key (the task's "key"), the same on every delivery of one task, or "": a
	// cluster delivers at least once, so a handler with side effects skips work already done for a key.
	Key string

	t *task // nil when Run did not make the request
}

// Decode unmarshals the payload into v.
func (r *Request) Decode(v any) error {
	return json.Unmarshal(r.Payload, v)
}

// Handler handles one task. Its result is sent as the response's result, encoded with encoding/json (a
// json.RawMessage is sent as it is); a returned error is sent as an error response. ctx is cancelled when the
// supervisor cancels the task (it timed out upstream, or its stream's consumer stopped), when the shutdown drain
// bound passes, when the supervisor is gone, and when the handler returns.
type Handler func(ctx context.Context, req *Request) (any, error)

// PayloadHandler adapts a function of the payload alone to a Handler.
func PayloadHandler(f func(ctx context.Context, payload json.RawMessage) (any, error)) Handler {
	return func(ctx context.Context, req *Request) (any, error) {
		return f(ctx, req.Payload)
	}
}

// ErrorTyper is implemented by errors that name their own type in an error response (found with errors.As, so a
// wrapped one counts). Without it the type is the Go type of the error returned, as %T prints it.
type ErrorTyper interface {
	ErrorType() string
}

// Options of Run. The zero value is what Serve uses.
type Options struct {
	// MaxConcurrency bounds how many tasks are in the handler at once; the others wait in arrival order.
	// DefaultMaxConcurrency when 0 or less.
	MaxConcurrency int
	// DrainTimeout bounds how long `shutdown` waits for the tasks in flight before it cancels their contexts
	// (they then have 0.5 s to return). DefaultDrainTimeout when 0; no bound when negative. Set it a little under
	// the agent's gracefulTimeout when you change that.
	DrainTimeout time.Duration
	// MaxQueuedBytes is the flow control of chunks, checkpoints and publishes: Request.Send, the Checkpoint and
	// Publish methods wait while this many bytes of output lines or more are waiting to be written (the write
	// under way included). The line being sent may take the queue over it: what the output holds is under
	// MaxQueuedBytes plus one line. Responses and ping answers never wait. DefaultMaxQueuedBytes when 0 or less.
	MaxQueuedBytes int
	// Input and Output carry the protocol. When either is nil, Run takes the process's stdin and stdout over for
	// it (fd 1 then points at stderr, fd 0 at /dev/null) and uses them for the missing one.
	Input  io.Reader
	Output io.Writer
	// Log receives the adapter's own warnings, one line each. os.Stderr when nil.
	Log io.Writer
}

// Agent is an agent to run (New) or running (Request.Agent): what belongs to the agent rather than to a task.
// Its methods may be called from any goroutine, before Run too.
type Agent struct {
	s       *server
	started int32 // atomic: Run was called
}

// New makes an agent that will serve h with opts when Run (or Serve) is called. Use it instead of Run when
// something outside the handler needs the Agent, for Checkpoint or Restored, before the first task.
func New(h Handler, opts Options) *Agent {
	if opts.Log == nil {
		opts.Log = os.Stderr
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = DefaultMaxConcurrency
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MaxQueuedBytes <= 0 {
		opts.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	a := &Agent{}
	a.s = newServer(a, h, opts, &logger{w: opts.Log})
	return a
}

// Run serves the protocol as the package's Run does, and returns the exit code. It may be called once.
func (a *Agent) Run() int {
	if !atomic.CompareAndSwapInt32(&a.started, 0, 1) {
		panic("agent: Run called twice on one Agent")
	}
	opts := &a.s.opts
	if opts.Input == nil || opts.Output == nil {
		in, out, err := takeOverStdio()
		if err != nil {
			a.s.log.printf("warning: %v", err)
		}
		if opts.Input == nil {
			opts.Input = in
		}
		if opts.Output == nil {
			opts.Output = out
		}
	}
	return a.s.serve()
}

// Serve serves the protocol as the package's Serve does, and exits the process.
func (a *Agent) Serve() {
	os.Exit(a.Run())
}

// Serve serves the protocol on stdin/stdout with h until shutdown, stdin EOF or stdout failure, then exits the
// process (ExitOK or ExitAbandoned). Call it from main, before anything else writes to stdout.
func Serve(h Handler) {
	New(h, Options{}).Serve()
}

// Run serves the protocol with h as Serve does, and returns the exit code instead of exiting. With Input given,
// the goroutine reading it may outlive Run: it ends when Input does.
func Run(h Handler, opts Options) int {
	return New(h, opts).Run()
}
