package main

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/effect-agent-supervisor/adapters/go/agent"
)

// The handler in this process, for what needs no stdout: the contract's answers and its errors.
func call(ctx context.Context, payload string) (string, error) {
	result, err := handle(ctx, &agent.Request{ID: "x", Payload: json.RawMessage(payload)})
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(result)
	return string(data), err
}

func TestHandleInProcess(t *testing.T) {
	ctx := context.Background()
	for payload, want := range map[string]string{
		`{"op":"echo","value":{"a":[1,"✓"]}}`: `{"a":[1,"✓"]}`,
		`{"op":"echo"}`:                       `null`,
		`{"op":"sleep","ms":1,"value":"v"}`:   `"v"`,
		`{"op":"sleep","ms":0}`:               `null`,
		`[1,2]`:                               `[1,2]`,
		`{"op":["echo"],"value":1}`:           `{"op":["echo"],"value":1}`,
		`{"op":"other","value":1}`:            `{"op":"other","value":1}`,
		`{"op":"stream","n":0,"value":"v"}`:   `"v"`,
		`{"op":"restored"}`:                   `null`, // a request Run did not make has no agent
	} {
		if got, err := call(ctx, payload); err != nil || got != want {
			t.Fatalf("%s: got %s, %v; want %s", payload, got, err, want)
		}
	}
	for payload, want := range map[string]string{
		`{"op":"fail","message":"no"}`:    "no",
		`{"op":"fail"}`:                   "fail: message must be a string: unexpected end of JSON input",
		`{"op":"sleep","ms":"soon"}`:      "sleep: ms must be a number of milliseconds: json: cannot unmarshal string into Go value of type float64",
		`{"op":"print","text":1}`:         "text must be a string: json: cannot unmarshal number into Go value of type string",
		`{"op":"spawn"}`:                  "text must be a string: unexpected end of JSON input",
		`{"op":"stream","n":1}`:           "agent: not served by Run",
		`{"op":"stream","n":-1}`:          "stream: n must be a whole number of pieces, 0 or more (got -1)",
		`{"op":"stream","n":1.5}`:         "stream: n must be a whole number of pieces, 0 or more (got 1.5)",
		`{"op":"stream"}`:                 "stream: n must be a whole number of pieces, 0 or more (got )",
		`{"op":"stream","n":1,"ms":"x"}`:  "stream: ms must be a number of milliseconds: json: cannot unmarshal string into Go value of type float64",
		`{"op":"checkpoint","data":1}`:    "agent: not served by Run",
		`{"op":"checkpoint","request":1}`: "checkpoint: request must be a boolean: json: cannot unmarshal number into Go value of type bool",
	} {
		if _, err := call(ctx, payload); err == nil || err.Error() != want {
			t.Fatalf("%s: got error %v, want %q", payload, err, want)
		}
	}
}

func TestSleepOutcome(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := call(ctx, `{"op":"sleep","ms":60000}`)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	// Asked before the sleeping goroutine may have woken: the cancel decides it.
	if got, _ := call(context.Background(), `{"op":"wasCancelled"}`); got != "true" {
		t.Fatalf("wasCancelled %s", got)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a cancelled sleep returned %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the sleep did not end when cancelled")
	}
}
