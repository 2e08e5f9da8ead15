package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

func echo(_ context.Context, req *agent.Request) (any, error) {
	return req.Payload, nil
}

// blocker is a handler that reports each start and blocks until released or cancelled.
type blocker struct {
	started   chan string
	release   chan struct{}
	cancelled chan string
	ignoreCtx bool // block until released even when cancelled
}

func newBlocker() *blocker {
	return &blocker{started: make(chan string, 100), release: make(chan struct{}), cancelled: make(chan string, 100)}
}

func (b *blocker) handle(ctx context.Context, req *agent.Request) (any, error) {
	b.started <- req.ID
	if b.ignoreCtx {
		<-b.release
		return "released", nil
	}
	select {
	case <-b.release:
		return "released", nil
	case <-ctx.Done():
		b.cancelled <- req.ID
		return nil, ctx.Err()
	}
}

func receive(t *testing.T, ch chan string, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("%s: not within %v", what, wait)
	}
	return ""
}

func TestEchoAndMissingPayload(t *testing.T) {
	h := start(t, echo, agent.Options{})
	h.task("a", map[string]any{"text": "héllo ✓ 你好", "n": []int{1, 2}})
	r := h.recv()
	if r.ID != "a" || r.Status != "ok" {
		t.Fatalf("got %+v", r)
	}
	jsonEqual(t, r.Result, map[string]any{"text": "héllo ✓ 你好", "n": []int{1, 2}})
	h.send(map[string]any{"id": "b", "type": "task"})
	if r := h.recv(); string(r.Result) != "null" {
		t.Fatalf("a task without payload gets %s, want null", r.Result)
	}
	// HTML-ish characters are sent as they are, not as \u003c escapes.
	h.sendRaw([]byte(`{"id":"c","type":"task","payload":"<a&b>"}` + "\n"))
	if line := h.recvRaw(); !strings.Contains(string(line), `"<a&b>"`) {
		t.Fatalf("got %s", line)
	}
}

func TestRequestDecodeAndPayloadHandler(t *testing.T) {
	h := start(t, agent.PayloadHandler(func(_ context.Context, payload json.RawMessage) (any, error) {
		req := agent.Request{Payload: payload}
		var in struct {
			Text string `json:"text"`
		}
		if err := req.Decode(&in); err != nil {
			return nil, err
		}
		return strings.ToUpper(in.Text), nil
	}), agent.Options{})
	h.task("a", map[string]string{"text": "abc"})
	jsonEqual(t, h.recv().Result, "ABC")
	h.task("b", []int{1})
	if r := h.recv(); r.Status != "error" || r.Error.Type != "*json.UnmarshalTypeError" {
		t.Fatalf("got %+v", r)
	}
}

func TestConcurrentRequestsAreCorrelated(t *testing.T) {
	t.Parallel()
	var running, most int32
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		now := atomic.AddInt32(&running, 1)
		for {
			seen := atomic.LoadInt32(&most)
			if now <= seen || atomic.CompareAndSwapInt32(&most, seen, now) {
				break
			}
		}
		var in struct{ Ms, N int }
		_ = req.Decode(&in)
		time.Sleep(time.Duration(in.Ms) * time.Millisecond)
		atomic.AddInt32(&running, -1)
		return map[string]any{"n": in.N, "id": req.ID}, nil
	}, agent.Options{MaxConcurrency: 64})
	const n = 64
	for i := 0; i < n; i++ {
		h.task(fmt.Sprintf("t%d", i), map[string]int{"ms": rand.Intn(50), "n": i})
	}
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		r := h.recv()
		var result struct {
			N  int
			ID string
		}
		if err := json.Unmarshal(r.Result, &result); err != nil {
			t.Fatal(err)
		}
		if r.ID != result.ID || r.ID != fmt.Sprintf("t%d", result.N) || seen[r.ID] {
			t.Fatalf("response %s for %+v (seen before: %v)", r.ID, result, seen[r.ID])
		}
		seen[r.ID] = true
	}
	if atomic.LoadInt32(&most) < 2 {
		t.Fatalf("at most %d handler(s) ran at once", most)
	}
	if health := h.ping("p"); health["total_requests"] != n {
		t.Fatalf("total_requests %v, want %d", health["total_requests"], n)
	}
}

func TestMaxConcurrencyBoundsHandlers(t *testing.T) {
	t.Parallel()
	var running, most int32
	var mu sync.Mutex
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		mu.Lock()
		running++
		if running > most {
			most = running
		}
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return req.ID, nil
	}, agent.Options{MaxConcurrency: 3})
	for i := 0; i < 10; i++ {
		h.task(fmt.Sprintf("t%d", i), nil)
	}
	for i := 0; i < 10; i++ {
		if r := h.recv(); r.Status != "ok" {
			t.Fatalf("got %+v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > 3 {
		t.Fatalf("%d handlers ran at once, over MaxConcurrency 3", most)
	}
}

func TestPingAnsweredWhileHandlersBlockAndQueue(t *testing.T) {
	b := newBlocker()
	h := start(t, b.handle, agent.Options{MaxConcurrency: 2})
	for i := 0; i < 4; i++ {
		h.task(fmt.Sprintf("t%d", i), nil)
	}
	receive(t, b.started, "first task")
	receive(t, b.started, "second task")
	health := h.ping("p1")
	if health["total_requests"] != 4 || health["memory_mb"] <= 0 || health["uptime_seconds"] < 0 {
		t.Fatalf("health %v", health)
	}
	if health["cpu_percent"] < 0 {
		t.Fatalf("health %v", health)
	}
	select {
	case id := <-b.started:
		t.Fatalf("task %s started beyond MaxConcurrency", id)
	default:
	}
	close(b.release)
	for i := 0; i < 4; i++ {
		if r := h.recv(); string(r.Result) != `"released"` {
			t.Fatalf("got %+v", r)
		}
	}
}

func TestCPUPercentIsOverTheIntervalSinceThePreviousPing(t *testing.T) {
	h := start(t, func(context.Context, *agent.Request) (any, error) {
		// Burn CPU until the process has used 200 ms of it (bounded: a loaded machine gives it little).
		started := time.Now()
		used := agent.ProcessCPU
		begin := used()
		x := 0.0
		for used()-begin < 200*time.Millisecond && time.Since(started) < 5*time.Second {
			for i := 0; i < 100000; i++ {
				x += math.Sqrt(float64(i))
			}
		}
		return x > 0, nil
	}, agent.Options{})
	h.ping("before")
	h.task("burn", nil)
	h.recv()
	if busy := h.ping("after")["cpu_percent"]; busy < 3 {
		t.Fatalf("cpu_percent %v after burning CPU", busy)
	}
	time.Sleep(300 * time.Millisecond)
	if idle := h.ping("idle")["cpu_percent"]; idle > 50 {
		t.Fatalf("cpu_percent %v while idle", idle)
	}
}

func TestCancelCancelsTheContextAndSendsNothing(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	h := start(t, b.handle, agent.Options{})
	h.task("slow", nil)
	receive(t, b.started, "the task")
	h.send(map[string]any{"id": "slow", "type": "cancel"})
	if id := receive(t, b.cancelled, "the context's cancellation"); id != "slow" {
		t.Fatalf("cancelled %s", id)
	}
	h.send(map[string]any{"id": "nobody", "type": "cancel"}) // harmless
	h.ping("after")                                          // the next line: nothing was sent for "slow"
	// A task cancelled while it waits for a slot never starts.
	b2 := newBlocker()
	h2 := start(t, b2.handle, agent.Options{MaxConcurrency: 1})
	h2.task("running", nil)
	receive(t, b2.started, "the first task")
	h2.task("queued", nil)
	h2.send(map[string]any{"id": "queued", "type": "cancel"})
	h2.ping("p")
	close(b2.release)
	if r := h2.recv(); r.ID != "running" {
		t.Fatalf("got %+v", r)
	}
	h2.noLine(100 * time.Millisecond)
	select {
	case id := <-b2.started:
		t.Fatalf("cancelled task %s started", id)
	default:
	}
}

// A goroutine cannot be stopped: handlers that ignore their cancelled contexts and hold every slot would leave no
// slot for any task while pings were answered, and the supervisor saw a healthy agent. Pings fail then, and answer
// again once one returns.
func TestPingsFailWhileCancelledHandlersHoldEverySlot(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	b.ignoreCtx = true
	h := start(t, b.handle, agent.Options{MaxConcurrency: 2})
	h.task("a", nil)
	h.task("b", nil)
	receive(t, b.started, "the first task")
	receive(t, b.started, "the second task")
	h.ping("full") // busy is not stuck
	h.send(map[string]any{"id": "a", "type": "cancel"})
	h.ping("one-left") // one slot's task still has a caller
	h.send(map[string]any{"id": "b", "type": "cancel"})
	h.send(map[string]any{"id": "stuck", "type": "ping"})
	r := h.recv()
	if r.ID != "stuck" || r.Error == nil || r.Error.Type != "AdapterStuck" ||
		!strings.Contains(r.Error.Message, "all 2 handler slots (Options.MaxConcurrency) are held by handlers") {
		t.Fatalf("got %+v, want the ping answered with AdapterStuck", r)
	}
	h.waitLog("warning: all 2 handler slots")
	h.task("after", nil)
	h.noLine(100 * time.Millisecond) // no slot takes it
	close(b.release)                 // the cancelled handlers return (nothing sent for them); a freed slot runs it
	if id := receive(t, b.started, "the task waiting for a slot"); id != "after" {
		t.Fatalf("started %s", id)
	}
	if r := h.recv(); r.ID != "after" || r.Status != "ok" {
		t.Fatalf("got %+v", r)
	}
	h.ping("freed")
	h.waitLog("a cancelled handler returned: a slot is free again")
}

type quotaError struct{ left int }

func (e *quotaError) Error() string     { return fmt.Sprintf("quota exceeded, %d left", e.left) }
func (e *quotaError) ErrorType() string { return "QuotaError" }

type stackError struct{}

func (stackError) Error() string { return "with a stack" }
func (stackError) Format(f fmt.State, verb rune) {
	if f.Flag('+') {
		fmt.Fprint(f, "with a stack\nmain.f\n\tmain.go:1")
		return
	}
	fmt.Fprint(f, "with a stack")
}

func TestErrorsBecomeErrorResponses(t *testing.T) {
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		var kind string
		_ = req.Decode(&kind)
		switch kind {
		case "plain":
			return nil, errors.New("plain failure")
		case "typed":
			return nil, fmt.Errorf("calling the model: %w", &quotaError{left: 0})
		case "stack":
			return nil, stackError{}
		}
		return nil, context.DeadlineExceeded
	}, agent.Options{})
	cases := []struct{ kind, message, typ, stack string }{
		{"plain", "plain failure", "*errors.errorString", "*errors.errorString: plain failure\n"},
		{"typed", "calling the model: quota exceeded, 0 left", "QuotaError", "QuotaError: calling the model: quota exceeded, 0 left\n"},
		{"stack", "with a stack", "agent_test.stackError", "agent_test.stackError: with a stack\nmain.f\n\tmain.go:1\n"},
		{"deadline", "context deadline exceeded", "context.deadlineExceededError", "context.deadlineExceededError: context deadline exceeded\n"},
	}
	for _, c := range cases {
		h.task(c.kind, c.kind)
		line := h.recvRaw()
		var r response
		_ = json.Unmarshal(line, &r)
		if r.ID != c.kind || r.Status != "error" || r.Error == nil || r.Result != nil {
			t.Fatalf("%s: got %s", c.kind, line)
		}
		if r.Error.Message != c.message || r.Error.Type != c.typ || r.Error.Stack != c.stack {
			t.Fatalf("%s: got %+v", c.kind, *r.Error)
		}
	}
}

func panicky(_ context.Context, req *agent.Request) (any, error) {
	var kind string
	_ = req.Decode(&kind)
	switch kind {
	case "string":
		panic("boom")
	case "index":
		var empty []int
		return empty[len(kind)], nil
	case "error":
		panic(fmt.Errorf("wrapped: %w", errors.New("inner")))
	case "goexit":
		runtime.Goexit()
	case "nilmap":
		var m map[string]int
		m["x"] = 1
	}
	return "fine", nil
}

func TestPanicIsAnErrorResponseNotACrash(t *testing.T) {
	h := start(t, panicky, agent.Options{})
	cases := map[string]string{
		"string": "boom",
		"index":  "runtime error: index out of range [5] with length 0",
		"error":  "wrapped: inner",
		"nilmap": "assignment to entry in nil map",
	}
	for kind, message := range cases {
		h.task(kind, kind)
		r := h.recv()
		if r.ID != kind || r.Status != "error" || r.Error.Type != "panic" || r.Error.Message != message {
			t.Fatalf("%s: got %+v %+v", kind, r, r.Error)
		}
		if !strings.HasPrefix(r.Error.Stack, "panic: "+message+" [recovered]\n\ngoroutine ") ||
			!strings.Contains(r.Error.Stack, "agent_test.panicky(") || !strings.Contains(r.Error.Stack, "agent_test.go:") {
			t.Fatalf("%s: stack %s", kind, r.Error.Stack)
		}
	}
	h.task("goexit", "goexit")
	if r := h.recv(); r.Status != "error" || r.Error.Type != "Goexit" {
		t.Fatalf("got %+v", r)
	}
	h.task("after", "nothing")
	jsonEqual(t, h.recv().Result, "fine")
}

type badMarshaler struct{}

func (badMarshaler) MarshalJSON() ([]byte, error) { panic("marshal exploded") }

func TestUnserialisableResult(t *testing.T) {
	results := map[string]any{
		"func":    func() {},
		"channel": make(chan int),
		"nan":     math.NaN(),
		"nested":  map[string]any{"inf": math.Inf(1)},
	}
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		if req.ID == "panics" {
			return badMarshaler{}, nil
		}
		return results[req.ID], nil
	}, agent.Options{})
	for id := range results {
		h.task(id, nil)
		r := h.recv()
		if r.ID != id || r.Status != "error" || r.Error.Type != "SerializationError" ||
			!strings.Contains(r.Error.Message, "not JSON-serialisable") {
			t.Fatalf("%s: got %+v %+v", id, r, r.Error)
		}
	}
	h.task("panics", nil)
	if r := h.recv(); r.Error == nil || r.Error.Type != "panic" || r.Error.Message != "marshal exploded" {
		t.Fatalf("got %+v", r)
	}
}

func TestBadLinesAreIgnored(t *testing.T) {
	h := start(t, echo, agent.Options{})
	for _, line := range []string{
		"this is not json",
		"[1, 2, 3]",
		`"a string"`,
		"null",
		`{"type": "bogus", "id": "z"}`,
		`{"type": 5, "id": "z"}`,
		`{"type": "task", "payload": 1}`,
		`{"type": "ping", "id": 42}`,
		"\xff\xfe invalid utf-8",
		strings.Repeat("{", 100000),
		strings.Repeat("[", 100000),
		"",
		"   ",
		`{"Type": "ping", "ID": "case matters"}`,
		`{"id":"trailing","type":"ping"} and more`,
	} {
		h.sendRaw([]byte(line + "\n"))
	}
	h.task("ok", map[string]any{"still": "alive"})
	if r := h.recv(); r.ID != "ok" {
		t.Fatalf("got %+v: a bad line was answered", r)
	}
	for _, text := range []string{"not JSON (invalid", "not a JSON object", "unknown type \"bogus\"", "unknown type \"5\"",
		"task message without a string id", "ping message without a string id", "invalid UTF-8", "max depth"} {
		h.waitLog(text)
	}
}

func TestLineEndingsSpacesAndSplitCharacters(t *testing.T) {
	t.Parallel()
	h := start(t, echo, agent.Options{})
	h.sendRaw([]byte(`{"id":"crlf","type":"task","payload":"crlf"}` + "\r\n"))
	jsonEqual(t, h.recv().Result, "crlf")
	h.sendRaw([]byte(`  {"id":"spaced","type":"ping"}  ` + "\n"))
	if r := h.recv(); r.ID != "spaced" {
		t.Fatalf("got %+v", r)
	}
	// A multi-byte character split across two writes (and so, most likely, two reads).
	line := []byte(`{"id":"u","type":"task","payload":"café ✓ 你好"}` + "\n")
	cut := strings.Index(string(line), "é") + 1
	h.sendRaw(line[:cut])
	time.Sleep(20 * time.Millisecond)
	h.sendRaw(line[cut:])
	jsonEqual(t, h.recv().Result, "café ✓ 你好")
	// A bad line between two good ones in one write.
	h.sendRaw([]byte(`{"id":"a","type":"task","payload":"é"}` + "\n\xff\xfe not utf-8\n" +
		`{"id":"b","type":"task","payload":"✓"}` + "\n"))
	got := map[string]bool{h.recv().ID: true, h.recv().ID: true}
	if !got["a"] || !got["b"] {
		t.Fatalf("got %v", got)
	}
}

func TestFourMebibytesEachWay(t *testing.T) {
	t.Parallel()
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		var in struct {
			Data string
			Make int
		}
		if err := req.Decode(&in); err != nil {
			return nil, err
		}
		if in.Make > 0 {
			return strings.Repeat("ü€", in.Make/5), nil // 5 bytes a repetition
		}
		return map[string]int{"bytes": len(in.Data)}, nil
	}, agent.Options{})
	big := strings.Repeat("é✓x", 4<<20/6) // 6 bytes a repetition
	h.task("in", map[string]string{"data": big})
	jsonEqual(t, h.recv().Result, map[string]int{"bytes": len(big)})
	h.task("out", map[string]int{"make": 4 << 20})
	r := h.recv()
	var result string
	if err := json.Unmarshal(r.Result, &result); err != nil {
		t.Fatal(err)
	}
	if result != strings.Repeat("ü€", 4<<20/5) {
		t.Fatalf("a 4 MiB result came back as %d bytes", len(result))
	}
	// And both ways at once.
	big = strings.Repeat("ß", 2<<20)
	h2 := start(t, echo, agent.Options{})
	h2.task("echo", big)
	if err := json.Unmarshal(h2.recv().Result, &result); err != nil || result != big {
		t.Fatalf("a 4 MiB payload came back as %d bytes (%v)", len(result), err)
	}
	h2.ping("after")
}

func TestDuplicateInFlightIDIsIgnored(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	h := start(t, b.handle, agent.Options{})
	h.task("same", nil)
	receive(t, b.started, "the task")
	h.task("same", nil)
	h.waitLog("duplicate in-flight id")
	close(b.release)
	if r := h.recv(); r.ID != "same" {
		t.Fatalf("got %+v", r)
	}
	h.noLine(100 * time.Millisecond)
}

func TestShutdownDrainsAndRefusesLateTasks(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	h := start(t, b.handle, agent.Options{})
	h.task("inflight", nil)
	receive(t, b.started, "the task")
	h.send(map[string]any{"type": "shutdown"})
	h.task("late", nil) // stdin still open: refused, not dropped
	r := h.recv()
	if r.ID != "late" || r.Error == nil || r.Error.Type != "AdapterShuttingDown" {
		t.Fatalf("got %+v", r)
	}
	h.ping("while draining")
	close(b.release)
	if r := h.recv(); r.ID != "inflight" || r.Status != "ok" {
		t.Fatalf("got %+v", r)
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK { // without stdin EOF
		t.Fatalf("exit code %d", code)
	}
}

func TestShutdownThenEOFDrains(t *testing.T) {
	t.Parallel()
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		time.Sleep(300 * time.Millisecond)
		return req.ID, nil
	}, agent.Options{})
	for i := 0; i < 3; i++ {
		h.task(fmt.Sprintf("t%d", i), nil)
	}
	h.send(map[string]any{"type": "shutdown"})
	h.closeStdin()
	for i := 0; i < 3; i++ {
		if r := h.recv(); r.Status != "ok" {
			t.Fatalf("got %+v", r)
		}
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
}

func TestUnterminatedLinesBeforeEOF(t *testing.T) {
	t.Parallel()
	h := start(t, echo, agent.Options{})
	h.sendRaw([]byte(`{"id":"tail","type":"ping"}`))
	h.closeStdin()
	if r := h.recv(); r.ID != "tail" {
		t.Fatalf("got %+v", r)
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}

	b := newBlocker()
	h = start(t, b.handle, agent.Options{})
	h.task("inflight", nil)
	receive(t, b.started, "the task")
	h.sendRaw([]byte(`{"type":"shutdown"}`))
	h.closeStdin()
	time.Sleep(50 * time.Millisecond)
	close(b.release)
	if r := h.recv(); r.ID != "inflight" || r.Status != "ok" {
		t.Fatalf("got %+v", r)
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
}

func TestShutdownDoesNotWaitForACancelledTask(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	b.ignoreCtx = true
	defer close(b.release)
	h := start(t, b.handle, agent.Options{DrainTimeout: -1})
	h.task("stuck", nil)
	receive(t, b.started, "the task")
	h.send(map[string]any{"id": "stuck", "type": "cancel"})
	h.send(map[string]any{"type": "shutdown"})
	h.closeStdin()
	if code, took := h.waitExit(3 * time.Second); code != agent.ExitOK {
		t.Fatalf("exit code %d after %v", code, took)
	}
	h.noLine(50 * time.Millisecond)
}

func TestDrainTimeoutCancelsWhatStillRuns(t *testing.T) {
	t.Parallel()
	b := newBlocker()
	h := start(t, b.handle, agent.Options{DrainTimeout: 200 * time.Millisecond})
	h.task("long", nil)
	receive(t, b.started, "the task")
	h.send(map[string]any{"type": "shutdown"})
	if id := receive(t, b.cancelled, "the cancellation past the drain bound"); id != "long" {
		t.Fatalf("cancelled %s", id)
	}
	// Cancelled by the drain bound, not upstream: what the handler returned is still sent.
	if r := h.recv(); r.ID != "long" || r.Error == nil || r.Error.Message != "context canceled" {
		t.Fatalf("got %+v", r)
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
	if took := time.Since(h.start); took < 200*time.Millisecond {
		t.Fatalf("exited after %v, before the drain bound", took)
	}
	h.waitLog("cancelling their contexts")

	// A handler that ignores its context is left behind 0.5 s later.
	stuck := newBlocker()
	stuck.ignoreCtx = true
	defer close(stuck.release)
	h = start(t, stuck.handle, agent.Options{DrainTimeout: 100 * time.Millisecond})
	h.task("stuck", nil)
	receive(t, stuck.started, "the task")
	h.send(map[string]any{"type": "shutdown"})
	if code, took := h.waitExit(3 * time.Second); code != agent.ExitOK || took < 500*time.Millisecond {
		t.Fatalf("exit code %d after %v", code, took)
	}
	h.waitLog("cancelled handlers still running")
}

func TestEOFWithoutShutdown(t *testing.T) {
	t.Parallel()
	t.Run("idle: exit 0", func(t *testing.T) {
		h := start(t, echo, agent.Options{})
		h.closeStdin()
		if code, _ := h.waitExit(wait); code != agent.ExitOK {
			t.Fatalf("exit code %d", code)
		}
	})
	for _, ignore := range []bool{false, true} {
		ignore := ignore
		t.Run(fmt.Sprintf("in flight, ignoring its context %v: cancelled, exit 4 within 1 s", ignore), func(t *testing.T) {
			t.Parallel()
			b := newBlocker()
			b.ignoreCtx = ignore
			defer close(b.release)
			h := start(t, b.handle, agent.Options{DrainTimeout: -1})
			h.task("doomed", nil)
			h.task("queued", nil)
			receive(t, b.started, "the task")
			h.closeStdin()
			code, took := h.waitExit(3 * time.Second) // 1 s, with room for a loaded machine
			if code != agent.ExitAbandoned {
				t.Fatalf("exit code %d", code)
			}
			if !ignore {
				receive(t, b.cancelled, "the cancellation")
				if took > 2*time.Second {
					t.Fatalf("took %v", took)
				}
			}
			h.noLine(50 * time.Millisecond)
			h.waitLog("without shutdown")
			h.waitLog("cancelling 2 task(s)")
		})
	}
}

func TestExitsWhenStdoutFails(t *testing.T) {
	h := start(t, echo, agent.Options{})
	_ = h.outR.CloseWithError(errors.New("the supervisor's reader is gone"))
	h.task("r", 1) // its response fails to go out: that alone ends Run, stdin open
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
	h.waitLog("stdout failed")
}

func TestTheCallersIdempotencyKeyReachesTheHandler(t *testing.T) {
	h := start(t, func(ctx context.Context, req *agent.Request) (any, error) { return req.Key, nil }, agent.Options{})
	h.send(map[string]any{"id": "k", "type": "task", "payload": nil, "key": "order-42#1"})
	if r := h.recv(); string(r.Result) != `"order-42#1"` {
		t.Fatalf("got %s, want the key", r.Result)
	}
	h.task("n", nil)
	if r := h.recv(); string(r.Result) != `""` {
		t.Fatalf("a task without key gives %s, want \"\"", r.Result)
	}
}
