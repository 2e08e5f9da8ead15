package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

// line is any decoded output line: a response, a chunk or a checkpoint.
type line struct {
	ID     *string         `json:"id"`
	Type   string          `json:"type"`
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

func (h *harness) next() line {
	h.t.Helper()
	raw := h.recvRaw()
	var l line
	if err := json.Unmarshal(raw, &l); err != nil {
		h.t.Fatalf("output line is not JSON (%v): %q", err, raw)
	}
	return l
}

// pingThrough sends a ping and reads up to its answer, through chunks of the streams named (queued before it).
func (h *harness) pingThrough(id string, streams ...string) {
	h.t.Helper()
	h.send(map[string]any{"id": id, "type": "ping"})
	for {
		l := h.next()
		if l.id() == id && l.Status == "ok" {
			return
		}
		if l.Type != "chunk" || !strings.Contains(","+strings.Join(streams, ",")+",", ","+l.id()+",") {
			h.t.Fatalf("before the ping's answer: %+v", l)
		}
	}
}

func (l line) id() string {
	if l.ID == nil {
		return ""
	}
	return *l.ID
}

func (h *harness) streamTask(id string, payload any) {
	h.t.Helper()
	h.send(map[string]any{"id": id, "type": "task", "payload": payload, "stream": true})
}

// counter sends n pieces {"i":k} and returns "done"; the payload is n.
func counter(_ context.Context, req *agent.Request) (any, error) {
	var n int
	if err := req.Decode(&n); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		if err := req.Send(map[string]int{"i": i}); err != nil {
			return nil, err
		}
	}
	return "done", nil
}

func TestReadyAnnouncesTheFeatures(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer func() { _ = inW.Close(); _ = outR.Close() }()
	go agent.Run(echo, agent.Options{Input: inR, Output: outW, Log: io.Discard})
	first, err := bufio.NewReader(outR).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Type     string
		Protocol int
		Features []string
	}
	if err := json.Unmarshal(first, &ready); err != nil {
		t.Fatal(err)
	}
	if ready.Type != "ready" || ready.Protocol != 1 || strings.Join(ready.Features, ",") != "stream,checkpoint,publish" {
		t.Fatalf("ready line %s", first)
	}
}

func TestStreamSendsChunksInOrderThenTheResult(t *testing.T) {
	t.Parallel()
	h := start(t, counter, agent.Options{})
	h.streamTask("s", 3)
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf(`{"id":"s","type":"chunk","data":{"i":%d}}`+"\n", i)
		if got := string(h.recvRaw()); got != want {
			t.Fatalf("line %d: %q, want %q", i, got, want)
		}
	}
	if got := string(h.recvRaw()); got != `{"id":"s","status":"ok","result":"done"}`+"\n" {
		t.Fatalf("final line %q", got)
	}
	// Two long streams at once: each one's chunks in order, each ended by its response after all of them.
	const n = 2000
	h.streamTask("a", n)
	h.streamTask("b", n)
	nextOf := map[string]int{"a": 0, "b": 0}
	for ended := 0; ended < 2; {
		l := h.next()
		switch {
		case l.Type == "chunk":
			var piece struct{ I int }
			_ = json.Unmarshal(l.Data, &piece)
			if piece.I != nextOf[l.id()] {
				t.Fatalf("chunk %d of %s, want %d", piece.I, l.id(), nextOf[l.id()])
			}
			nextOf[l.id()]++
		case l.Status == "ok":
			if nextOf[l.id()] != n {
				t.Fatalf("%s answered after %d chunks", l.id(), nextOf[l.id()])
			}
			ended++
		default:
			t.Fatalf("unexpected line %+v", l)
		}
	}
	// Zero chunks: the response alone.
	h.streamTask("none", 0)
	if r := h.recv(); r.ID != "none" || string(r.Result) != `"done"` {
		t.Fatalf("got %+v", r)
	}
}

func TestNonStreamTaskCollectsThePieces(t *testing.T) {
	t.Parallel()
	h := start(t, func(ctx context.Context, req *agent.Request) (any, error) {
		var in struct {
			N    int
			Fail bool
		}
		_ = req.Decode(&in)
		for i := 0; i < in.N; i++ {
			if err := req.Send(map[string]any{"i": i, "streaming": req.Streaming()}); err != nil {
				return nil, err
			}
		}
		if in.Fail {
			return nil, errors.New("failed after the pieces")
		}
		return "returned", nil
	}, agent.Options{})
	want := `[{"i":0,"streaming":false},{"i":1,"streaming":false},{"i":2,"streaming":false}]`
	// No "stream", false, and anything but true: a v1 task.
	for i, stream := range []any{nil, false, "true", 1, map[string]any{}} {
		msg := map[string]any{"id": fmt.Sprint(i), "type": "task", "payload": map[string]int{"n": 3}}
		if stream != nil {
			msg["stream"] = stream
		}
		h.send(msg)
		if got := string(h.recvRaw()); got != fmt.Sprintf(`{"id":"%d","status":"ok","result":%s}`+"\n", i, want) {
			t.Fatalf("stream %v: %q", stream, got)
		}
	}
	h.task("none", map[string]int{"n": 0}) // no pieces: what the handler returned
	if r := h.recv(); string(r.Result) != `"returned"` {
		t.Fatalf("got %s", r.Result)
	}
	h.task("failing", map[string]any{"n": 2, "fail": true}) // an error wins over the pieces
	if r := h.recv(); r.Error == nil || r.Error.Message != "failed after the pieces" {
		t.Fatalf("got %+v", r)
	}
	h.noLine(50 * time.Millisecond)
}

// producer streams pieces as fast as Send takes them until Send fails; it reports each one sent and the error.
type producer struct {
	size    int // bytes of each piece's data
	sent    int64
	started chan struct{}
	ended   chan error
}

func newProducer(size int) *producer {
	return &producer{size: size, started: make(chan struct{}, 1), ended: make(chan error, 1)}
}

func (p *producer) handle(_ context.Context, req *agent.Request) (any, error) {
	select {
	case p.started <- struct{}{}:
	default:
	}
	var limit int64
	_ = req.Decode(&limit)
	filler := strings.Repeat("x", p.size)
	for i := int64(0); limit == 0 || i < limit; i++ {
		if err := req.Send(map[string]any{"i": i, "filler": filler}); err != nil {
			p.ended <- err
			return nil, err
		}
		atomic.AddInt64(&p.sent, 1)
	}
	p.ended <- nil
	return "finished", nil
}

func (p *producer) count() int64 { return atomic.LoadInt64(&p.sent) }

// settle waits until the producer's count has not changed for 200 ms (at most wait), and returns it.
func settle(p *producer) int64 {
	last, since, deadline := p.count(), time.Now(), time.Now().Add(wait)
	for time.Since(since) < 200*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if now := p.count(); now != last {
			last, since = now, time.Now()
		}
	}
	return last
}

func TestCancelMidStreamStopsTheProducer(t *testing.T) {
	t.Parallel()
	p := newProducer(10)
	h := start(t, p.handle, agent.Options{MaxQueuedBytes: 4 << 10})
	h.streamTask("endless", 0)
	for i := 0; i < 100; i++ { // streaming for a while
		if l := h.next(); l.Type != "chunk" || l.id() != "endless" {
			t.Fatalf("got %+v", l)
		}
	}
	h.send(map[string]any{"id": "endless", "type": "cancel"})
	select {
	case err := <-p.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send returned %v after the cancel", err)
		}
	case <-time.After(wait):
		t.Fatal("the producer went on after the cancel")
	}
	// What was queued before the cancel was read may still come, then the ping's answer: nothing after it.
	h.pingThrough("p", "endless")
	sent := p.count()
	h.noLine(100 * time.Millisecond)
	if p.count() != sent {
		t.Fatal("Send succeeded after the cancel")
	}
	h.task("after", 1) // not a stream: collected
	if r := h.recv(); r.ID != "after" || !strings.HasPrefix(string(r.Result), `[{"filler":"xxxxxxxxxx","i":0}]`) {
		t.Fatalf("got %+v", r)
	}
}

func TestBackpressureBlocksAFastProducer(t *testing.T) {
	t.Parallel()
	const bound = 16 << 10
	const size = 1000 // a line is a little over 1 KB
	p := newProducer(size)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe() // not read until the test says so: a supervisor that reads slowly
	exit := make(chan int, 1)
	go func() {
		exit <- agent.Run(p.handle, agent.Options{Input: inR, Output: outW, Log: io.Discard, MaxQueuedBytes: bound})
		_ = outW.Close()
	}()
	defer func() { _ = inW.Close(); _ = outR.Close() }()
	send := func(msg string) {
		if _, err := inW.Write([]byte(msg + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	const total = 2000 // 2 MB of chunks, were nothing bounding them
	send(fmt.Sprintf(`{"id":"s","type":"task","payload":%d,"stream":true}`, total))
	<-p.started
	// The producer fills the queue (the ready line is stuck in the write under way) and then waits: its count
	// settles (unchanged for 200 ms), at the bound.
	maxSent := int64(bound/size + 2)
	blockedAt := settle(p)
	if blockedAt > maxSent || blockedAt < maxSent-4 {
		t.Fatalf("%d chunks queued for a reader that reads nothing; the bound (%d bytes) allows %d", blockedAt, bound,
			maxSent)
	}
	// The reader goroutine is not held up: a ping is read and queued (its answer comes in order), a cancel too.
	send(`{"id":"p","type":"ping"}`)
	// Now read: every chunk, in order, then the result; the ping's answer among them.
	r := bufio.NewReader(outR)
	if first, _ := r.ReadString('\n'); !strings.HasPrefix(first, `{"type":"ready"`) {
		t.Fatalf("first line %q", first)
	}
	next, pinged := 0, false
	for {
		raw, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("read: %v after %d chunks", err, next)
		}
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatal(err)
		}
		if l.id() == "p" {
			pinged = true
			continue
		}
		if l.Status == "ok" {
			break
		}
		var piece struct{ I int }
		_ = json.Unmarshal(l.Data, &piece)
		if l.Type != "chunk" || piece.I != next {
			t.Fatalf("got %.80s, want chunk %d", raw, next)
		}
		next++
	}
	if next != total || !pinged {
		t.Fatalf("%d chunks (want %d), ping answered: %v", next, total, pinged)
	}
	if err := <-p.ended; err != nil {
		t.Fatalf("the producer ended with %v", err)
	}

	// A cancel reaches a producer that waits for room: Send returns at once, and nothing more of it is sent.
	send(`{"id":"c","type":"task","payload":0,"stream":true}`)
	<-p.started
	if queued := settle(p) - total; queued > maxSent {
		t.Fatalf("%d chunks queued", queued)
	}
	send(`{"id":"c","type":"cancel"}`)
	select {
	case err := <-p.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send returned %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Send kept waiting after the cancel")
	}
	send(`{"id":"p2","type":"ping"}`)
	chunks := 0
	for {
		raw, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var l line
		_ = json.Unmarshal(raw, &l)
		if l.id() == "p2" {
			break
		}
		if l.Type != "chunk" || l.id() != "c" {
			t.Fatalf("got %.80s", raw)
		}
		chunks++
	}
	if int64(chunks) != p.count()-total {
		t.Fatalf("%d chunks of the cancelled stream came, %d were sent", chunks, p.count()-total)
	}
	send(`{"type":"shutdown"}`)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if code := <-exit; code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
}

func TestPingsAreAnsweredWhileStreaming(t *testing.T) {
	t.Parallel()
	p := newProducer(100)
	h := start(t, p.handle, agent.Options{MaxQueuedBytes: 32 << 10})
	h.streamTask("endless", 0)
	for i := 0; i < 3; i++ {
		for j := 0; j < 200; j++ {
			if l := h.next(); l.Type != "chunk" {
				t.Fatalf("got %+v", l)
			}
		}
		id := fmt.Sprintf("p%d", i)
		h.send(map[string]any{"id": id, "type": "ping"})
		// Answered after what was queued before it: the 4096 lines the harness holds, the agent's queue (~230), and
		// what the producer adds until the agent's reader takes the ping, which the scheduler decides (5,097 lines
		// in all once, on a loaded machine). The bound says only that the endless stream does not starve the ping.
		for between := 0; ; between++ {
			l := h.next()
			if l.id() == id {
				if l.Status != "ok" || !strings.Contains(string(l.Result), "uptime_seconds") {
					t.Fatalf("ping answered %+v", l)
				}
				break
			}
			if l.Type != "chunk" || between > 64*1024 {
				t.Fatalf("after %d lines: %+v", between, l)
			}
		}
	}
	h.send(map[string]any{"id": "endless", "type": "cancel"})
	<-p.ended
}

func TestSendAfterTheHandlerReturnedSendsNothing(t *testing.T) {
	t.Parallel()
	leaked := make(chan *agent.Request, 1)
	h := start(t, func(_ context.Context, req *agent.Request) (any, error) {
		if err := req.Send("before"); err != nil {
			return nil, err
		}
		leaked <- req
		return "final", nil
	}, agent.Options{})
	h.streamTask("s", nil)
	if l := h.next(); l.Type != "chunk" || string(l.Data) != `"before"` {
		t.Fatalf("got %+v", l)
	}
	if r := h.recv(); string(r.Result) != `"final"` {
		t.Fatalf("got %+v", r)
	}
	req := <-leaked
	if err := req.Send("after"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send after the response: %v", err)
	}
	if err := req.Checkpoint("after"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Checkpoint after the response: %v", err)
	}
	h.noLine(50 * time.Millisecond)
}

// Checkpoints made before Run never wait for a writer that does not run yet (a deadlock once the queue was over its
// bound): only the latest is kept, and sent right after the ready line.
func TestCheckpointsBeforeRunNeverWait(t *testing.T) {
	t.Parallel()
	h, opts := newHarness(t, agent.Options{MaxQueuedBytes: 1024})
	a := agent.New(func(ctx context.Context, req *agent.Request) (any, error) { return nil, nil }, opts)
	big := strings.Repeat("x", 2048)
	for i := 0; i < 3; i++ {
		if err := a.Checkpoint(fmt.Sprintf("%d %s", i, big)); err != nil {
			t.Fatal(err)
		}
	}
	h.run(a.Run)
	if got := string(h.recvRaw()); got != `{"type":"checkpoint","data":"2 `+big+`"}`+"\n" {
		t.Fatalf("got %.80q", got)
	}
	h.send(map[string]any{"type": "shutdown"})
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
}

type explodingMarshaler struct{}

func (explodingMarshaler) MarshalJSON() ([]byte, error) { panic("marshal exploded") }

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	h, opts := newHarness(t, agent.Options{})
	a := agent.New(func(ctx context.Context, req *agent.Request) (any, error) {
		var op string
		_ = req.Decode(&op)
		switch op {
		case "both":
			if err := req.Checkpoint(map[string]int{"page": 3}); err != nil {
				return nil, err
			}
			if err := req.Agent().Checkpoint(map[string]int{"processed": 1200}); err != nil {
				return nil, err
			}
			return "checkpointed", nil
		case "nan":
			return nil, req.Checkpoint(math.NaN())
		case "agent-nan":
			return nil, req.Agent().Checkpoint(make(chan int))
		}
		return nil, nil
	}, opts)
	// Before Run: sent right after the ready line.
	if err := a.Checkpoint("before Run"); err != nil {
		t.Fatal(err)
	}
	h.run(a.Run)
	if got := string(h.recvRaw()); got != `{"type":"checkpoint","data":"before Run"}`+"\n" {
		t.Fatalf("got %q", got)
	}
	h.task("c", "both") // a v1 task checkpoints too: it is not a chunk
	for _, want := range []string{
		`{"type":"checkpoint","id":"c","data":{"page":3}}`,
		`{"type":"checkpoint","data":{"processed":1200}}`,
		`{"id":"c","status":"ok","result":"checkpointed"}`,
	} {
		if got := string(h.recvRaw()); got != want+"\n" {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	for _, op := range []string{"nan", "agent-nan"} {
		h.task(op, op)
		if r := h.recv(); r.Error == nil || r.Error.Type != "SerializationError" ||
			!strings.Contains(r.Error.Message, "checkpoint is not JSON-serialisable") {
			t.Fatalf("%s: got %+v", op, r)
		}
	}
	// A request that Run did not make, and no agent.
	var detached agent.Request
	if detached.Send(1) != agent.ErrNotServed || detached.Checkpoint(1) != agent.ErrNotServed || detached.Streaming() ||
		detached.Agent() != nil || detached.Restored() != nil {
		t.Fatal("a detached request acts as if served")
	}
	var none *agent.Agent
	if none.Checkpoint(1) != agent.ErrNotServed || none.Restored() != nil || none.RestoredRequests() != nil {
		t.Fatal("a nil Agent acts as if running")
	}
	// After Run: closed.
	h.send(map[string]any{"type": "shutdown"})
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
	if err := a.Checkpoint("too late"); err != agent.ErrClosed {
		t.Fatalf("Checkpoint after Run: %v", err)
	}
}

func TestRestoreIsSeenByTheFirstTask(t *testing.T) {
	t.Parallel()
	restored := func(_ context.Context, req *agent.Request) (any, error) {
		return map[string]any{"data": req.Restored(), "requests": req.Agent().RestoredRequests()}, nil
	}
	h := start(t, restored, agent.Options{})
	// Right after ready, in the same write as the first task.
	h.sendRaw([]byte(`{"type":"restore","data":{"processed":1200},"requests":{"7":{"page":3}}}` + "\n" +
		`{"id":"first","type":"task","payload":null}` + "\n"))
	jsonEqual(t, h.recv().Result, map[string]any{
		"data": map[string]any{"processed": 1200}, "requests": map[string]any{"7": map[string]any{"page": 3}},
	})
	// The last restore wins, whole.
	h.send(map[string]any{"type": "restore", "data": "second"})
	h.task("second", nil)
	jsonEqual(t, h.recv().Result, map[string]any{"data": "second", "requests": nil})
	h.sendRaw([]byte(`{"type":"restore","requests":[1]}` + "\n"))
	h.task("third", nil)
	jsonEqual(t, h.recv().Result, map[string]any{"data": nil, "requests": nil})
	h.waitLog("requests of a restore message, not an object")

	// Without a restore: nothing.
	h2 := start(t, restored, agent.Options{})
	h2.task("t", nil)
	jsonEqual(t, h2.recv().Result, map[string]any{"data": nil, "requests": nil})

	// Through New, outside any handler.
	h3, opts := newHarness(t, agent.Options{})
	a := agent.New(echo, opts)
	h3.run(a.Run)
	h3.send(map[string]any{"type": "restore", "data": []int{1, 2}})
	h3.ping("p") // read after the restore
	if got := string(a.Restored()); got != "[1,2]" {
		t.Fatalf("Restored %q", got)
	}
}

func TestUnknownMessageTypesAreIgnored(t *testing.T) {
	t.Parallel()
	h := start(t, echo, agent.Options{})
	for i := 0; i < 3; i++ {
		h.sendRaw([]byte(`{"type":"progress-request","id":"x","extra":[1]}` + "\n"))
		h.sendRaw([]byte(`{"type":"chunk","id":"x","data":1}` + "\n"))
	}
	h.task("t", "alive")
	jsonEqual(t, h.recv().Result, "alive")
	h.waitLog(`unknown type "chunk"`)
	if n := strings.Count(h.log.String(), `unknown type "progress-request"`); n != 1 {
		t.Fatalf("reported %d times:\n%s", n, h.log)
	}
}

func TestStreamHandler(t *testing.T) {
	t.Parallel()
	fCancelled := make(chan struct{}, 1)
	h := start(t, agent.StreamHandler(func(ctx context.Context, req *agent.Request, out chan<- any) error {
		var in struct {
			N     int
			Bad   bool
			Panic bool
			Fail  bool
		}
		_ = req.Decode(&in)
		for i := 0; in.N < 0 || i < in.N; i++ {
			var piece any = i
			if in.Bad && i == 2 {
				piece = make(chan int)
			}
			if in.Panic && i == 1 {
				piece = explodingMarshaler{}
			}
			select {
			case out <- piece:
			case <-ctx.Done():
				fCancelled <- struct{}{}
				return ctx.Err()
			}
		}
		if in.Fail {
			return errors.New("f failed")
		}
		return nil
	}), agent.Options{})
	h.streamTask("s", map[string]int{"n": 3})
	for i := 0; i < 3; i++ {
		if l := h.next(); l.Type != "chunk" || string(l.Data) != fmt.Sprint(i) {
			t.Fatalf("got %+v", l)
		}
	}
	if got := string(h.recvRaw()); got != `{"id":"s","status":"ok","result":null}`+"\n" {
		t.Fatalf("got %q", got)
	}
	h.task("v1", map[string]int{"n": 3})
	jsonEqual(t, h.recv().Result, []int{0, 1, 2})
	h.task("empty", map[string]int{"n": 0})
	if r := h.recv(); string(r.Result) != "[]" {
		t.Fatalf("got %s", r.Result)
	}
	h.task("fail", map[string]any{"n": 1, "fail": true})
	if r := h.recv(); r.Error == nil || r.Error.Message != "f failed" {
		t.Fatalf("got %+v", r)
	}
	// A piece that cannot be sent fails the task and cancels f's context.
	h.streamTask("bad", map[string]any{"n": -1, "bad": true})
	for {
		l := h.next()
		if l.Type == "chunk" {
			continue
		}
		if l.Error == nil || l.Error.Type != "SerializationError" {
			t.Fatalf("got %+v", l)
		}
		break
	}
	<-fCancelled
	h.task("panic", map[string]any{"n": -1, "panic": true})
	if r := h.recv(); r.Error == nil || !strings.Contains(r.Error.Message, "marshal exploded") {
		t.Fatalf("got %+v", r)
	}
	<-fCancelled
	// Cancelled upstream: f sees its context done.
	h.streamTask("endless", map[string]int{"n": -1})
	h.next()
	h.send(map[string]any{"id": "endless", "type": "cancel"})
	select {
	case <-fCancelled:
	case <-time.After(wait):
		t.Fatal("f's context was not cancelled")
	}
	h.pingThrough("after", "endless")
	h.noLine(50 * time.Millisecond)
}

func TestShutdownDrainsAStream(t *testing.T) {
	t.Parallel()
	h := start(t, func(ctx context.Context, req *agent.Request) (any, error) {
		for i := 0; i < 5; i++ {
			time.Sleep(20 * time.Millisecond)
			if err := req.Send(i); err != nil {
				return nil, err
			}
		}
		return "drained", nil
	}, agent.Options{})
	h.streamTask("s", nil)
	h.send(map[string]any{"type": "shutdown"})
	h.closeStdin()
	for i := 0; i < 5; i++ {
		if l := h.next(); l.Type != "chunk" || string(l.Data) != fmt.Sprint(i) {
			t.Fatalf("got %+v", l)
		}
	}
	if r := h.recv(); string(r.Result) != `"drained"` {
		t.Fatalf("got %+v", r)
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
}

func TestSendFailsOnceStdoutFails(t *testing.T) {
	t.Parallel()
	p := newProducer(10)
	h := start(t, p.handle, agent.Options{DrainTimeout: -1})
	h.streamTask("s", 0)
	h.next()
	_ = h.outR.CloseWithError(errors.New("the supervisor's reader is gone"))
	select {
	case err := <-p.ended:
		if err != agent.ErrClosed {
			t.Fatalf("Send returned %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Send went on after stdout failed")
	}
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
}
