package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

// publishLines are the two publishes of the "publish" op, as they must come out.
var publishLines = []string{
	`{"type":"publish","topic":"jobs","payload":{"n":1}}`,
	`{"type":"publish","topic":"reports.daily","payload":{"job":{"steps":[1,{"deep":[true,null,2.5]}],"text":"héllo ✓ <&>"},"tags":[]}}`,
}

func publishing(ctx context.Context, req *agent.Request) (any, error) {
	var op string
	_ = req.Decode(&op)
	switch op {
	case "publish":
		if err := req.Publish("jobs", map[string]int{"n": 1}); err != nil {
			return nil, err
		}
		nested := json.RawMessage(`{"job":{"steps":[1,{"deep":[true,null,2.5]}],"text":"héllo ✓ <&>"},"tags":[]}`)
		if err := req.Agent().Publish("reports.daily", nested); err != nil {
			return nil, err
		}
		return "published", nil
	case "bad":
		var caught []string
		for _, err := range []error{
			req.Publish("", 1),
			req.Agent().Publish("", 1),
			req.Publish("jobs", math.NaN()),
			req.Agent().Publish("jobs", make(chan int)),
		} {
			var serialization *agent.SerializationError
			switch {
			case errors.Is(err, agent.ErrEmptyTopic):
				caught = append(caught, "ErrEmptyTopic")
			case errors.As(err, &serialization):
				caught = append(caught, serialization.ErrorType()+": "+serialization.What)
			default:
				caught = append(caught, "unexpected: "+err.Error())
			}
		}
		return caught, req.Publish("jobs", nil)
	case "fail":
		return nil, req.Publish("jobs", math.Inf(1))
	}
	return op, nil
}

func TestPublishesGoOutBeforeTheResponse(t *testing.T) {
	t.Parallel()
	h := start(t, publishing, agent.Options{})
	h.task("p", "publish")
	for _, want := range append(publishLines, `{"id":"p","status":"ok","result":"published"}`) {
		if got := string(h.recvRaw()); got != want+"\n" {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestABadPublishIsTheCallersErrorAndTheAgentGoesOn(t *testing.T) {
	t.Parallel()
	h := start(t, publishing, agent.Options{})
	h.task("b", "bad")
	if got := string(h.recvRaw()); got != `{"type":"publish","topic":"jobs","payload":null}`+"\n" {
		t.Fatalf("got %q", got)
	}
	r := h.recv()
	jsonEqual(t, r.Result, []string{
		"ErrEmptyTopic", "ErrEmptyTopic", "SerializationError: publish payload", "SerializationError: publish payload",
	})
	h.task("f", "fail")
	if r := h.recv(); r.Error == nil || r.Error.Type != "SerializationError" ||
		!strings.Contains(r.Error.Message, "publish payload is not JSON-serialisable") {
		t.Fatalf("got %+v", r)
	}
	h.task("e", "echo")
	if r := h.recv(); string(r.Result) != `"echo"` {
		t.Fatalf("got %+v", r)
	}
	// A request that Run did not make, and no agent.
	var detached agent.Request
	var none *agent.Agent
	if detached.Publish("jobs", 1) != agent.ErrNotServed || none.Publish("jobs", 1) != agent.ErrNotServed {
		t.Fatal("a detached request or a nil Agent publishes")
	}
}

// Before Run every publish is kept, in order, and sent right after the ready line (the latest agent checkpoint
// after them); Request.Publish is bound to its task, Agent.Publish is not; after Run, the output is closed.
func TestPublishBeforeDuringAndAfterRun(t *testing.T) {
	t.Parallel()
	h, opts := newHarness(t, agent.Options{MaxQueuedBytes: 1024})
	leaked := make(chan *agent.Request, 1)
	a := agent.New(func(ctx context.Context, req *agent.Request) (any, error) {
		leaked <- req
		return "answered", nil
	}, opts)
	big := strings.Repeat("x", 2048)
	for i := 0; i < 3; i++ {
		if err := a.Publish("boot", map[string]any{"i": i, "big": big}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Checkpoint("latest"); err != nil {
		t.Fatal(err)
	}
	h.run(a.Run)
	for i := 0; i < 3; i++ {
		want := `{"type":"publish","topic":"boot","payload":{"big":"` + big + `","i":` + string(rune('0'+i)) + `}}` + "\n"
		if got := string(h.recvRaw()); got != want {
			t.Fatalf("publish %d: got %.80q", i, got)
		}
	}
	if got := string(h.recvRaw()); got != `{"type":"checkpoint","data":"latest"}`+"\n" {
		t.Fatalf("got %q", got)
	}
	h.task("t", nil)
	if r := h.recv(); string(r.Result) != `"answered"` {
		t.Fatalf("got %+v", r)
	}
	req := <-leaked
	if err := req.Publish("late", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Request.Publish after the response: %v", err)
	}
	if err := req.Agent().Publish("later", 2); err != nil {
		t.Fatal(err)
	}
	if got := string(h.recvRaw()); got != `{"type":"publish","topic":"later","payload":2}`+"\n" {
		t.Fatalf("got %q", got)
	}
	h.send(map[string]any{"type": "shutdown"})
	if code, _ := h.waitExit(wait); code != agent.ExitOK {
		t.Fatalf("exit code %d", code)
	}
	if err := a.Publish("too late", 1); err != agent.ErrClosed {
		t.Fatalf("Publish after Run: %v", err)
	}
	h.noLine(20 * time.Millisecond)
}
