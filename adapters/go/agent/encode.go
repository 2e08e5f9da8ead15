package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
)

// processStart is when the program started, as near as a package can tell: the health report's uptime.
var processStart = time.Now()

func readyLine() []byte {
	features, _ := marshal(announced)
	return []byte(`{"type":"ready","protocol":` + itoa(ProtocolVersion) + `,"features":` + string(features) + "}\n")
}

// chunkLine is one piece of a streamed result; data is encoded JSON.
func chunkLine(rawID, data []byte) []byte {
	line := make([]byte, 0, len(rawID)+len(data)+40)
	line = append(line, `{"id":`...)
	line = append(line, rawID...)
	line = append(line, `,"type":"chunk","data":`...)
	line = append(line, data...)
	return append(line, "}\n"...)
}

// checkpointLine is a checkpoint: the agent's when rawID is nil, else that request's. data is encoded JSON.
func checkpointLine(rawID, data []byte) []byte {
	line := make([]byte, 0, len(rawID)+len(data)+40)
	line = append(line, `{"type":"checkpoint",`...)
	if rawID != nil {
		line = append(line, `"id":`...)
		line = append(line, rawID...)
		line = append(line, ',')
	}
	line = append(line, `"data":`...)
	line = append(line, data...)
	return append(line, "}\n"...)
}

// publishLine hands a task to a topic; payload is encoded JSON.
func publishLine(topic string, payload []byte) []byte {
	encodedTopic, _ := marshal(topic) // a string always encodes (invalid UTF-8 becomes U+FFFD)
	line := make([]byte, 0, len(encodedTopic)+len(payload)+40)
	line = append(line, `{"type":"publish","topic":`...)
	line = append(line, encodedTopic...)
	line = append(line, `,"payload":`...)
	line = append(line, payload...)
	return append(line, "}\n"...)
}

// listOf is the JSON array of encoded values.
func listOf(values [][]byte) json.RawMessage {
	size := 2
	for _, v := range values {
		size += len(v) + 1
	}
	list := make([]byte, 0, size)
	list = append(list, '[')
	for i, v := range values {
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, v...)
	}
	return append(list, ']')
}

// SerializationError is what Send, Checkpoint and Publish return for a value encoding/json cannot encode (a channel,
// NaN); returned by the handler, it is an error response of type "SerializationError", as an unencodable result is.
type SerializationError struct {
	What  string // "chunk", "checkpoint", "publish payload"
	Value any
	Err   error // encoding/json's
}

func (e *SerializationError) Error() string {
	return fmt.Sprintf("%s is not JSON-serialisable (%T: %v)", e.What, e.Value, e.Err)
}

func (e *SerializationError) Unwrap() error { return e.Err }

// ErrorType names the error's type in an error response.
func (e *SerializationError) ErrorType() string { return "SerializationError" }

// encode marshals a chunk's or a checkpoint's data, or a publish's payload.
func encode(what string, data any) ([]byte, error) {
	encoded, err := marshal(data)
	if err != nil {
		return nil, &SerializationError{What: what, Value: data, Err: err}
	}
	return encoded, nil
}

// marshal encodes v as JSON without HTML escaping (the supervisor is no browser) and without a newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// resultLine is a task's ok response, or a SerializationError response when the result is not JSON.
func resultLine(rawID []byte, result any) []byte {
	encoded, err := marshal(result)
	if err != nil {
		message := fmt.Sprintf("handler result is not JSON-serialisable (%T: %v)", result, err)
		return errorInfoLine(rawID, message, "SerializationError", "SerializationError: "+message+"\n")
	}
	line := make([]byte, 0, len(rawID)+len(encoded)+40)
	line = append(line, `{"id":`...)
	line = append(line, rawID...)
	line = append(line, `,"status":"ok","result":`...)
	line = append(line, encoded...)
	return append(line, "}\n"...)
}

type errorInfo struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Stack   string `json:"stack"`
}

func errorInfoLine(rawID []byte, message, typ, stack string) []byte {
	// Strings always encode (invalid UTF-8 becomes U+FFFD).
	encoded, _ := marshal(errorInfo{Message: message, Type: typ, Stack: stack})
	line := make([]byte, 0, len(rawID)+len(encoded)+40)
	line = append(line, `{"id":`...)
	line = append(line, rawID...)
	line = append(line, `,"status":"error","error":`...)
	line = append(line, encoded...)
	return append(line, "}\n"...)
}

// errorLine is the error response for what a handler returned.
func errorLine(rawID []byte, err error) []byte {
	typ := ""
	var typer ErrorTyper
	if errors.As(err, &typer) {
		typ = typer.ErrorType()
	}
	if typ == "" {
		typ = fmt.Sprintf("%T", err)
	}
	// %+v: errors that carry a stack (github.com/pkg/errors and the like) print it.
	return errorInfoLine(rawID, err.Error(), typ, typ+": "+fmt.Sprintf("%+v", err)+"\n")
}

// panicLine is the error response for a handler's panic; stack is the panicking goroutine's.
func panicLine(rawID []byte, value any, stack []byte) []byte {
	message := describePanic(value)
	return errorInfoLine(rawID, message, "panic", "panic: "+message+" [recovered]\n\n"+string(stack))
}

// describePanic prints a panic's value; an Error or String method that panics too gets the value's type instead.
func describePanic(value any) (text string) {
	defer func() {
		if recover() != nil {
			text = fmt.Sprintf("(%T value whose Error or String method panicked)", value)
		}
	}()
	return fmt.Sprint(value)
}

func goexitLine(rawID []byte) []byte {
	const message = "the handler called runtime.Goexit (or panicked with nil) before returning"
	return errorInfoLine(rawID, message, "Goexit", "Goexit: "+message+"\n")
}

func refusalLine(rawID []byte) []byte {
	const message = "agent is shutting down; task not accepted"
	return errorInfoLine(rawID, message, "AdapterShuttingDown", "AdapterShuttingDown: "+message+"\n")
}

// stuckMessage says why pings fail while every one of the n slots is held by a handler cancelled upstream.
func stuckMessage(n int) string {
	return fmt.Sprintf("all %d handler slots (Options.MaxConcurrency) are held by handlers whose tasks were "+
		"cancelled (timed out upstream) and that have not returned: a goroutine cannot be stopped, so no task can "+
		"run until one returns; answering pings with this error so that the supervisor's heartbeat restarts the "+
		"agent", n)
}

// stuckLine answers a ping while the agent is stuck (see stuckMessage).
func stuckLine(rawID []byte, n int) []byte {
	message := stuckMessage(n)
	return errorInfoLine(rawID, message, "AdapterStuck", "AdapterStuck: "+message+"\n")
}

type healthReport struct {
	UptimeSeconds float64 `json:"uptime_seconds"`
	TotalRequests int64   `json:"total_requests"`
	MemoryMB      float64 `json:"memory_mb"`
	CPUPercent    float64 `json:"cpu_percent"`
}

func healthLine(rawID []byte, report healthReport) []byte {
	return resultLine(rawID, struct {
		Health healthReport `json:"health"`
	}{report})
}

func round(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}

func itoa(n int) string {
	return strconv.Itoa(n)
}

// logger writes the adapter's own lines to stderr, whole, one at a time.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	line := "[go-adapter] " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, line) // stderr gone too: nothing sensible left to do with a log line
}
