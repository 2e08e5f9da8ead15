package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

// wait bounds every wait for something that should happen at once; generous, for loaded machines.
const wait = 10 * time.Second * raceScale

// readyLine is the first line out: protocol 1 with the 1.1 and 1.2 features.
const readyLine = `{"type":"ready","protocol":1,"features":["stream","checkpoint","publish"]}` + "\n"

// harness runs agent.Run in the test process, its protocol on pipes.
type harness struct {
	t     *testing.T
	in    *io.PipeWriter
	outR  *io.PipeReader
	outW  *io.PipeWriter
	lines chan []byte
	log   *syncBuffer
	exit  chan int
	start time.Time
}

func start(t *testing.T, h agent.Handler, opts agent.Options) *harness {
	t.Helper()
	hs, opts := newHarness(t, opts)
	hs.run(func() int { return agent.Run(h, opts) })
	return hs
}

// newHarness makes the pipes, and the options that carry them; run starts the agent on them.
func newHarness(t *testing.T, opts agent.Options) (*harness, agent.Options) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	hs := &harness{
		t: t, in: inW, outR: outR, outW: outW, lines: make(chan []byte, 4096), log: &syncBuffer{},
		exit: make(chan int, 1), start: time.Now(),
	}
	opts.Input, opts.Output, opts.Log = inR, outW, hs.log
	t.Cleanup(func() {
		_ = inW.Close()
		_ = outR.Close()
	})
	return hs, opts
}

// run runs the agent (agent.Run, or the Run of an agent.New made with the harness's options) and reads the ready
// line.
func (hs *harness) run(run func() int) {
	hs.t.Helper()
	go func() {
		hs.exit <- run()
		_ = hs.outW.Close()
	}()
	go func() {
		r := bufio.NewReader(hs.outR)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				hs.lines <- line
			}
			if err != nil {
				close(hs.lines)
				return
			}
		}
	}()
	if ready := hs.recvRaw(); string(ready) != readyLine {
		hs.t.Fatalf("first line %q, want the ready line", ready)
	}
}

func (h *harness) sendRaw(data []byte) {
	h.t.Helper()
	if _, err := h.in.Write(data); err != nil {
		h.t.Fatalf("write to the agent: %v", err)
	}
}

func (h *harness) send(msg any) {
	h.t.Helper()
	data, err := json.Marshal(msg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.sendRaw(append(data, '\n'))
}

func (h *harness) task(id string, payload any) {
	h.t.Helper()
	h.send(map[string]any{"id": id, "type": "task", "payload": payload})
}

func (h *harness) closeStdin() {
	_ = h.in.Close()
}

func (h *harness) recvRaw() []byte {
	h.t.Helper()
	select {
	case line, ok := <-h.lines:
		if !ok {
			h.t.Fatalf("the output ended; log:\n%s", h.log)
		}
		return line
	case <-time.After(wait):
		h.t.Fatalf("no output line within %v; log:\n%s", wait, h.log)
	}
	return nil
}

// response is a decoded output line.
type response struct {
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Stack   string `json:"stack"`
	} `json:"error"`
}

func (h *harness) recv() response {
	h.t.Helper()
	line := h.recvRaw()
	var r response
	if err := json.Unmarshal(line, &r); err != nil {
		h.t.Fatalf("output line is not a response (%v): %q", err, line)
	}
	if r.ID == "" || (r.Status != "ok" && r.Status != "error") {
		h.t.Fatalf("output line is not a response: %q", line)
	}
	return r
}

// noLine asserts that nothing comes out for a while.
func (h *harness) noLine(d time.Duration) {
	h.t.Helper()
	select {
	case line, ok := <-h.lines:
		if ok {
			h.t.Fatalf("unexpected output line %q", line)
		}
	case <-time.After(d):
	}
}

// ping sends a ping and returns its health report; lines before its answer fail the test.
func (h *harness) ping(id string) map[string]float64 {
	h.t.Helper()
	h.send(map[string]any{"id": id, "type": "ping"})
	r := h.recv()
	if r.ID != id || r.Status != "ok" {
		h.t.Fatalf("got %+v, want the answer to ping %s", r, id)
	}
	var report struct {
		Health map[string]float64 `json:"health"`
	}
	if err := json.Unmarshal(r.Result, &report); err != nil {
		h.t.Fatal(err)
	}
	for _, key := range []string{"uptime_seconds", "total_requests", "memory_mb", "cpu_percent"} {
		if _, ok := report.Health[key]; !ok {
			h.t.Fatalf("health report %s has no %s", r.Result, key)
		}
	}
	if len(report.Health) != 4 {
		h.t.Fatalf("health report %s has other fields", r.Result)
	}
	return report.Health
}

// waitExit waits for Run to return; it fails the test when that takes longer than within.
func (h *harness) waitExit(within time.Duration) (int, time.Duration) {
	h.t.Helper()
	started := time.Now()
	select {
	case code := <-h.exit:
		return code, time.Since(started)
	case <-time.After(within):
		h.t.Fatalf("Run did not return within %v; log:\n%s", within, h.log)
	}
	return -1, 0
}

func (h *harness) waitLog(text string) {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for !strings.Contains(h.log.String(), text) {
		if time.Now().After(deadline) {
			h.t.Fatalf("the log never said %q; it has:\n%s", text, h.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func jsonEqual(t *testing.T, got json.RawMessage, want any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	data, _ := json.Marshal(want)
	_ = json.Unmarshal(data, &w)
	gd, _ := json.Marshal(g)
	wd, _ := json.Marshal(w)
	if !bytes.Equal(gd, wd) {
		t.Fatalf("got %s, want %s", abbreviate(gd), abbreviate(wd))
	}
}

func abbreviate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
