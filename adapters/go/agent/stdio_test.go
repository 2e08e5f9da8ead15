package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

// With AGENT_TEST_SERVE=1 this test binary is an agent served by agent.Serve on its real stdio, whose handler
// reports what it sees of the process's descriptors.
func TestMain(m *testing.M) {
	if os.Getenv("AGENT_TEST_SERVE") == "1" {
		agent.Serve(stdioProbe)
	}
	os.Exit(m.Run())
}

func stdioProbe(_ context.Context, req *agent.Request) (any, error) {
	var op string
	_ = req.Decode(&op)
	switch op {
	case "fds": // what the descriptors a child process inherits point at
		out, err := exec.Command("sh", "-c", `cd /proc/$$/fd && for fd in *; do readlink "$fd" || true; done`).Output()
		return strings.Split(strings.TrimSpace(string(out)), "\n"), err
	case "stdin": // what reading fd 0 gets: nothing, at once
		data, err := io.ReadAll(os.Stdin)
		return string(data), err
	case "fd1": // where fd 1 points, and fd 2
		one, err := os.Readlink("/proc/self/fd/1")
		if err != nil {
			return nil, err
		}
		two, err := os.Readlink("/proc/self/fd/2")
		return []string{one, two}, err
	}
	return nil, nil
}

func TestServeMovesTheProcessStdio(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Parallel()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	protocolPipes := []string{pipeOf(t, inW), pipeOf(t, outR)}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "AGENT_TEST_SERVE=1")
	cmd.Stdin, cmd.Stdout = inR, outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_, _ = inR.Close(), outW.Close()
	stdin, stdout := inW, outR
	defer func() {
		_ = stdin.Close()
		_ = stdout.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		r := bufio.NewScanner(stdout)
		for r.Scan() {
			lines <- r.Text()
		}
		close(lines)
	}()
	next := func() string {
		select {
		case line := <-lines:
			return line
		case <-time.After(wait):
			t.Fatal("no line from the agent")
		}
		return ""
	}
	if line := next(); line != `{"type":"ready","protocol":1,"features":["stream","checkpoint","publish"]}` {
		t.Fatalf("first line %q", line)
	}
	call := func(op string, result any) {
		t.Helper()
		_, _ = stdin.Write([]byte(`{"id":"` + op + `","type":"task","payload":"` + op + `"}` + "\n"))
		var r response
		if err := json.Unmarshal([]byte(next()), &r); err != nil || r.Status != "ok" {
			t.Fatalf("%s: %+v %+v %v", op, r, r.Error, err)
		}
		if err := json.Unmarshal(r.Result, result); err != nil {
			t.Fatal(err)
		}
	}
	var targets []string
	call("fds", &targets)
	// The protocol's duplicates are close-on-exec; fd 0 and fd 1 point elsewhere.
	for _, target := range targets {
		if target == protocolPipes[0] || target == protocolPipes[1] {
			t.Fatalf("a child process inherits a protocol pipe: %v (the pipes: %v)", targets, protocolPipes)
		}
	}
	if len(targets) < 3 {
		t.Fatalf("a child process has descriptors %v", targets)
	}
	var read string
	call("stdin", &read)
	if read != "" {
		t.Fatalf("fd 0 gave %q", read)
	}
	var fd1 []string
	call("fd1", &fd1)
	if fd1[0] != fd1[1] {
		t.Fatalf("fd 1 is %s, fd 2 is %s", fd1[0], fd1[1])
	}
	_, _ = stdin.Write([]byte(`{"type":"shutdown"}` + "\n"))
	_ = stdin.Close()
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// pipeOf is what /proc says f is: "pipe:[inode]".
func pipeOf(t *testing.T, f *os.File) string {
	t.Helper()
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !strings.HasPrefix(target, "pipe:") {
		t.Fatalf("%s: %q %v", f.Name(), target, err)
	}
	return target
}
