package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// message is any stdout line: a response, a chunk or a checkpoint.
type message struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Result json.RawMessage `json:"result"`
}

func (p *process) next() message {
	p.t.Helper()
	line := p.recvRaw()
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		p.t.Fatalf("stdout line is not JSON: %q", line)
	}
	return m
}

func (p *process) streamTask(id string, payload any) {
	p.t.Helper()
	p.send(map[string]any{"id": id, "type": "task", "payload": payload, "stream": true})
}

func (p *process) expect(lines ...string) {
	p.t.Helper()
	for _, want := range lines {
		if got := string(p.recvRaw()); got != want+"\n" {
			p.t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestStreamOp(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	p.streamTask("s", map[string]any{"op": "stream", "n": 3, "value": map[string]any{"done": true}})
	p.expect(
		`{"id":"s","type":"chunk","data":{"i":0}}`,
		`{"id":"s","type":"chunk","data":{"i":1}}`,
		`{"id":"s","type":"chunk","data":{"i":2}}`,
		`{"id":"s","status":"ok","result":{"done":true}}`,
	)
	// Sent without "stream":true (a v1 caller): no chunk, the pieces as the result.
	p.task("v1", map[string]any{"op": "stream", "n": 3, "value": "X"})
	p.expect(`{"id":"v1","status":"ok","result":[{"i":0},{"i":1},{"i":2}]}`)
	p.streamTask("zero", map[string]any{"op": "stream", "n": 0, "value": "X"})
	p.expect(`{"id":"zero","status":"ok","result":"X"}`)
	// Many pieces, paced and not: all of them, in order, then the value.
	p.streamTask("many", map[string]any{"op": "stream", "n": 20000, "value": 1})
	for i := 0; i < 20000; i++ {
		if m := p.next(); m.Type != "chunk" || string(m.Data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("piece %d: %+v", i, m)
		}
	}
	p.expect(`{"id":"many","status":"ok","result":1}`)
	p.shutdown()
}

func TestCancelMidStreamAndPingsWhileStreaming(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	// Endless for this test: the agent waits for the reader (the test), chunk by chunk.
	p.streamTask("endless", map[string]any{"op": "stream", "n": 1e12})
	for round := 0; round < 3; round++ {
		for i := 0; i < 1000; i++ {
			if m := p.next(); m.Type != "chunk" || m.ID != "endless" {
				t.Fatalf("got %+v", m)
			}
		}
		id := fmt.Sprintf("ping%d", round)
		p.send(map[string]string{"id": id, "type": "ping"})
		for {
			m := p.next()
			if m.ID == id {
				if m.Status != "ok" || !strings.Contains(string(m.Result), "total_requests") {
					t.Fatalf("ping answered %+v", m)
				}
				break
			}
			if m.Type != "chunk" {
				t.Fatalf("got %+v", m)
			}
		}
	}
	p.send(map[string]string{"id": "endless", "type": "cancel"})
	p.send(map[string]string{"id": "after", "type": "ping"})
	// Up to the ping's answer: what was queued before the cancel was read (up to 1 MiB of chunks).
	for {
		line := p.recvRaw()
		if strings.HasPrefix(string(line), `{"id":"after","status":"ok"`) {
			break
		}
		if !strings.HasPrefix(string(line), `{"id":"endless","type":"chunk","data":{"i":`) {
			t.Fatalf("got %q", line)
		}
	}
	// Nothing more of the cancelled stream: the next line is the next answer.
	time.Sleep(50 * time.Millisecond)
	r := p.call("echo", map[string]any{"op": "echo", "value": "next"})
	if got := result[string](t, r); got != "next" {
		t.Fatalf("got %q", got)
	}
	// A paced stream cancelled between pieces.
	p.streamTask("paced", map[string]any{"op": "stream", "n": 1000, "ms": 5})
	if m := p.next(); m.ID != "paced" || m.Type != "chunk" {
		t.Fatalf("got %+v", m)
	}
	p.send(map[string]string{"id": "paced", "type": "cancel"})
	p.send(map[string]string{"id": "after2", "type": "ping"})
	for m := p.next(); m.ID != "after2"; m = p.next() {
		if m.ID != "paced" || m.Type != "chunk" {
			t.Fatalf("got %+v", m)
		}
	}
	time.Sleep(50 * time.Millisecond)
	p.call("echo2", map[string]any{"op": "echo", "value": 2})
	p.shutdown()
}

func TestCheckpointOps(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	p.task("c", map[string]any{"op": "checkpoint", "data": map[string]any{"processed": 1200}})
	p.expect(`{"type":"checkpoint","data":{"processed":1200}}`, `{"id":"c","status":"ok","result":"checkpointed"}`)
	p.task("r", map[string]any{"op": "checkpoint", "data": map[string]any{"page": 3}, "request": true})
	p.expect(`{"type":"checkpoint","id":"r","data":{"page":3}}`, `{"id":"r","status":"ok","result":"checkpointed"}`)
	p.task("n", map[string]any{"op": "checkpoint"})
	p.expect(`{"type":"checkpoint","data":null}`, `{"id":"n","status":"ok","result":"checkpointed"}`)
	// No restore came: null.
	p.task("q", map[string]string{"op": "restored"})
	p.expect(`{"id":"q","status":"ok","result":null}`)
	p.shutdown()
}

func TestRestoreRightAfterReady(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	// As the supervisor sends it: right after ready, the first task on its heels (one write).
	p.sendRaw([]byte(`{"type":"restore","data":{"processed":1200},"requests":{"7":{"page":3}}}` + "\n" +
		`{"id":"first","type":"task","payload":{"op":"restored"}}` + "\n"))
	p.expect(`{"id":"first","status":"ok","result":{"processed":1200}}`)
	p.send(map[string]any{"type": "restore", "data": []int{1, 2}})
	p.task("second", map[string]string{"op": "restored"})
	p.expect(`{"id":"second","status":"ok","result":[1,2]}`)
	p.shutdown()
}

func TestUnknownMessageTypesAreIgnored(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	p.sendRaw([]byte(`{"type":"some-future-message","id":"x"}` + "\n" + `{"type":"chunk","id":"x","data":1}` + "\n"))
	r := p.call("echo", map[string]any{"op": "echo", "value": "alive"})
	if got := result[string](t, r); got != "alive" {
		t.Fatalf("got %q", got)
	}
	p.shutdown()
	if !strings.Contains(p.stderr.String(), `unknown type "some-future-message"`) {
		t.Fatalf("stderr:\n%s", p.stderr)
	}
}
