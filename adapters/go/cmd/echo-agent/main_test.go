package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests run this test binary as the agent: with ECHO_AGENT_SERVE=1 it is echo-agent itself (main, the real
// stdin, stdout and stderr of a child process, fd 1 moved), nothing of the test framework.
func TestMain(m *testing.M) {
	if os.Getenv("ECHO_AGENT_SERVE") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const wait = 10 * time.Second * raceScale

// readyLine is the first line out: protocol 1 with the 1.1 and 1.2 features.
const readyLine = `{"type":"ready","protocol":1,"features":["stream","checkpoint","publish"]}` + "\n"

type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte // every stdout line, as it came
	stderr *syncBuffer
	exited chan struct{}
	code   int
}

func startAgent(t *testing.T) *process {
	t.Helper()
	p := &process{t: t, lines: make(chan []byte, 4096), stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Env = append(os.Environ(), "ECHO_AGENT_SERVE=1")
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				p.lines <- line
			}
			if err != nil {
				break
			}
		}
		close(p.lines)
		_ = p.cmd.Wait() // after the reads, as os/exec wants
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(wait):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	if line := p.recvRaw(); string(line) != readyLine {
		t.Fatalf("first line %q, want the ready line", line)
	}
	return p
}

func (p *process) sendRaw(data []byte) {
	p.t.Helper()
	if _, err := p.stdin.Write(data); err != nil {
		p.t.Fatalf("write to the agent: %v", err)
	}
}

func (p *process) send(msg any) {
	p.t.Helper()
	data, err := json.Marshal(msg)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(append(data, '\n'))
}

func (p *process) task(id string, payload any) {
	p.t.Helper()
	p.send(map[string]any{"id": id, "type": "task", "payload": payload})
}

func (p *process) recvRaw() []byte {
	p.t.Helper()
	select {
	case line, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("stdout ended; stderr:\n%s", p.stderr)
		}
		return line
	case <-time.After(wait):
		p.t.Fatalf("no stdout line within %v; stderr:\n%s", wait, p.stderr)
	}
	return nil
}

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

func (p *process) recv() response {
	p.t.Helper()
	line := p.recvRaw()
	var r response
	if err := json.Unmarshal(line, &r); err != nil || r.ID == "" || (r.Status != "ok" && r.Status != "error") {
		p.t.Fatalf("stdout line is not a response: %q", line)
	}
	return r
}

func (p *process) call(id string, payload any) response {
	p.t.Helper()
	p.task(id, payload)
	r := p.recv()
	if r.ID != id {
		p.t.Fatalf("got the response to %s, want %s's", r.ID, id)
	}
	return r
}

// waitExit waits for the process to exit and for its stdout to end.
func (p *process) waitExit(within time.Duration) (int, time.Duration) {
	p.t.Helper()
	started := time.Now()
	select {
	case <-p.exited:
		return p.code, time.Since(started)
	case <-time.After(within):
		p.t.Fatalf("the agent did not exit within %v; stderr:\n%s", within, p.stderr)
	}
	return -1, 0
}

func (p *process) shutdown() {
	p.t.Helper()
	p.send(map[string]string{"type": "shutdown"})
	_ = p.stdin.Close()
	if code, _ := p.waitExit(wait); code != 0 {
		p.t.Fatalf("exit code %d after shutdown; stderr:\n%s", code, p.stderr)
	}
}

func result[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if r.Status != "ok" {
		t.Fatalf("response %s is an error: %+v", r.ID, r.Error)
	}
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("result %s: %v", r.Result, err)
	}
	return v
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

func TestOnlyTheProtocolReachesStdout(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	if got := result[string](t, p.call("print", map[string]any{"op": "print", "text": "PRINTED-BY-HANDLER"})); got != "printed" {
		t.Fatalf("print returned %q", got)
	}
	if got := result[string](t, p.call("spawn", map[string]any{"op": "spawn", "text": "ECHOED-BY-CHILD ✓"})); got != "spawned" {
		t.Fatalf("spawn returned %q", got)
	}
	// A burst of both beside echoes: no child's write may land inside a protocol line either.
	for i := 0; i < 20; i++ {
		p.task(fmt.Sprintf("s%d", i), map[string]any{"op": "spawn", "text": strings.Repeat("x", 1000)})
		p.task(fmt.Sprintf("p%d", i), map[string]any{"op": "print", "text": strings.Repeat("y", 1000)})
		p.task(fmt.Sprintf("e%d", i), map[string]any{"op": "echo", "value": i})
	}
	p.send(map[string]string{"type": "shutdown"})
	_ = p.stdin.Close()
	count := 0
	for line := range p.lines { // every line up to the end of stdout
		var r response
		if err := json.Unmarshal(line, &r); err != nil || r.Status != "ok" {
			t.Fatalf("stdout carried %q", line)
		}
		count++
	}
	if count != 60 {
		t.Fatalf("%d responses, want 60", count)
	}
	if code, _ := p.waitExit(wait); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "PRINTED-BY-HANDLER\n") || !strings.Contains(stderr, "ECHOED-BY-CHILD ✓\n") {
		t.Fatalf("stderr lacks what the handler and its child wrote to stdout:\n%s", stderr)
	}
}

func TestEchoFailAndOtherPayloads(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	value := map[string]any{"text": "héllo ✓ 你好 🎉", "n": []any{1.5, nil, true}}
	r := p.call("echo", map[string]any{"op": "echo", "value": value})
	if got, _ := json.Marshal(result[map[string]any](t, r)); !bytes.Equal(got, mustJSON(value)) {
		t.Fatalf("echo returned %s", got)
	}
	if r := p.call("no-value", map[string]any{"op": "echo"}); string(r.Result) != "null" {
		t.Fatalf("echo without a value returned %s", r.Result)
	}
	r = p.call("fail", map[string]any{"op": "fail", "message": "it went wrong: ✗"})
	if r.Status != "error" || r.Error.Message != "it went wrong: ✗" || r.Error.Type != "*errors.errorString" ||
		r.Error.Stack == "" {
		t.Fatalf("fail returned %+v %+v", r, r.Error)
	}
	for i, payload := range []any{[]any{1.0, 2.0}, "text", nil, 42.0, map[string]any{"op": "nope", "x": 1.0},
		map[string]any{"op": 5.0}, map[string]any{"no": "op"}} {
		r := p.call(fmt.Sprintf("other%d", i), payload)
		if got := result[any](t, r); !bytes.Equal(mustJSON(got), mustJSON(payload)) {
			t.Fatalf("%s returned %s", mustJSON(payload), r.Result)
		}
	}
	p.shutdown()
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

func TestSixtyFourConcurrentSleepsAreCorrelated(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	started := time.Now()
	total := 0
	for i := 0; i < 64; i++ {
		ms := rand.Intn(100)
		total += ms
		p.task(fmt.Sprintf("t%d", i), map[string]any{"op": "sleep", "ms": ms, "value": map[string]any{"i": i}})
	}
	seen := map[string]bool{}
	for i := 0; i < 64; i++ {
		r := p.recv()
		got := result[struct{ I int }](t, r)
		if r.ID != fmt.Sprintf("t%d", got.I) || seen[r.ID] {
			t.Fatalf("response %s carries %d", r.ID, got.I)
		}
		seen[r.ID] = true
	}
	if took := time.Since(started); took > time.Duration(total)*time.Millisecond/2 {
		t.Fatalf("64 sleeps of %d ms in all took %v: they did not run side by side", total, took)
	}
	p.shutdown()
}

func TestCancelCutsASleepShort(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	if result[bool](t, p.call("w0", map[string]string{"op": "wasCancelled"})) {
		t.Fatal("wasCancelled before any sleep")
	}
	p.call("short", map[string]any{"op": "sleep", "ms": 5, "value": 1})
	if result[bool](t, p.call("w1", map[string]string{"op": "wasCancelled"})) {
		t.Fatal("a sleep that ran its course counts as cancelled")
	}
	p.task("long", map[string]any{"op": "sleep", "ms": 60000, "value": 1})
	time.Sleep(20 * time.Millisecond)
	p.send(map[string]string{"id": "long", "type": "cancel"})
	r := p.call("w2", map[string]string{"op": "wasCancelled"}) // the next line: nothing for "long"
	if !result[bool](t, r) {
		t.Fatal("wasCancelled is false after a cancel")
	}
	p.call("again", map[string]any{"op": "sleep", "ms": 1, "value": 1})
	if result[bool](t, p.call("w3", map[string]string{"op": "wasCancelled"})) {
		t.Fatal("wasCancelled answers for an older sleep")
	}
	p.shutdown()
}

func TestFourMebibytesEachWayAndSplitCharacters(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	big := strings.Repeat("é✓𝄞x", 4<<20/10) // 10 bytes a repetition
	r := p.call("big", map[string]any{"op": "echo", "value": big})
	if got := result[string](t, r); got != big {
		t.Fatalf("4 MiB came back as %d bytes", len(got))
	}
	line := []byte(`{"id":"u","type":"task","payload":{"op":"echo","value":"café ✓ 你好"}}` + "\n")
	cut := bytes.Index(line, []byte("你")) + 1 // inside the character's three bytes
	p.sendRaw(line[:cut])
	time.Sleep(20 * time.Millisecond)
	p.sendRaw(line[cut:])
	if got := result[string](t, p.recv()); got != "café ✓ 你好" {
		t.Fatalf("got %q", got)
	}
	p.shutdown()
}

func TestHealthWhileSleeping(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	p.task("sleeping", map[string]any{"op": "sleep", "ms": 300, "value": 1})
	p.send(map[string]string{"id": "ping", "type": "ping"})
	r := p.recv()
	if r.ID != "ping" {
		t.Fatalf("the ping was answered after %s", r.ID)
	}
	health := result[struct {
		Health map[string]float64 `json:"health"`
	}](t, r).Health
	if health["total_requests"] != 1 || health["memory_mb"] < 1 || health["uptime_seconds"] < 0 || len(health) != 4 {
		t.Fatalf("health %v", health)
	}
	if _, ok := health["cpu_percent"]; !ok {
		t.Fatalf("health %v", health)
	}
	p.shutdown()
}

func TestShutdownDrainsSleeps(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	for i := 0; i < 3; i++ {
		p.task(fmt.Sprintf("s%d", i), map[string]any{"op": "sleep", "ms": 300, "value": i})
	}
	time.Sleep(20 * time.Millisecond)
	p.send(map[string]string{"type": "shutdown"})
	_ = p.stdin.Close()
	for i := 0; i < 3; i++ {
		if r := p.recv(); r.Status != "ok" {
			t.Fatalf("got %+v", r)
		}
	}
	if code, _ := p.waitExit(wait); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestStdinEOF(t *testing.T) {
	t.Parallel()
	p := startAgent(t)
	_ = p.stdin.Close()
	if code, _ := p.waitExit(wait); code != 0 {
		t.Fatalf("idle: exit code %d", code)
	}

	p = startAgent(t)
	p.task("doomed", map[string]any{"op": "sleep", "ms": 60000, "value": 1})
	time.Sleep(20 * time.Millisecond)
	_ = p.stdin.Close()
	code, took := p.waitExit(3 * time.Second) // within 1 s, with room for a loaded machine
	if code != 4 {
		t.Fatalf("exit code %d after %v; stderr:\n%s", code, took, p.stderr)
	}
	if _, ok := <-p.lines; ok {
		t.Fatal("a response for the cancelled task")
	}
	if !strings.Contains(p.stderr.String(), "without shutdown") {
		t.Fatalf("stderr:\n%s", p.stderr)
	}
}

func TestExitsWhenItsStdoutReaderIsGone(t *testing.T) {
	t.Parallel()
	readEnd, writeEnd, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "ECHO_AGENT_SERVE=1")
	cmd.Stdout = writeEnd
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = writeEnd.Close()
	defer func() { _ = stdin.Close() }()
	ready, err := bufio.NewReader(readEnd).ReadString('\n')
	if err != nil || ready != readyLine {
		t.Fatalf("first line %q (%v)", ready, err)
	}
	_ = readEnd.Close() // the supervisor's reader is gone
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The failed write of this response alone must end the agent: stdin stays open.
	_, _ = stdin.Write([]byte(`{"id":"r","type":"task","payload":1}` + "\n"))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; stderr:\n%s", err, stderr)
		}
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		t.Fatalf("the agent kept running after its stdout reader went away; stderr:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "stdout failed") {
		t.Fatalf("stderr:\n%s", stderr)
	}
}
