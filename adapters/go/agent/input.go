package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// readSize is the input buffer: a line longer than this is gathered across reads (a line may be of any length).
const readSize = 64 << 10

// read reads the input until it ends, dispatching each line; it runs in a goroutine of its own, so pings and
// cancels are answered whatever the handlers do.
func (s *server) read() {
	lines := lineReader{r: bufio.NewReaderSize(s.opts.Input, readSize)}
	for {
		line, err := lines.next()
		if len(line) > 0 { // the last line may come without its newline
			s.handleLine(line)
		}
		if err != nil {
			if err != io.EOF {
				s.log.printf("stdin read failed (%v); treating it as EOF", err)
			}
			s.endOfInput()
			return
		}
	}
}

// lineReader splits its input into lines of any length.
type lineReader struct {
	r    *bufio.Reader
	long []byte // a line longer than the reader's buffer, gathered
}

// next returns the next line without its newline, valid until the next call; at the end, the unterminated rest
// (maybe empty) with the error.
func (l *lineReader) next() ([]byte, error) {
	if cap(l.long) > 1<<20 {
		l.long = nil // one big line does not keep its memory
	}
	line, err := l.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.long = append(l.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = l.r.ReadSlice('\n')
			l.long = append(l.long, line...)
		}
		line = l.long
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, err
}

// handleLine decodes one line and acts on it; a line that is not a message is reported and ignored.
func (s *server) handleLine(line []byte) {
	if len(bytes.TrimLeft(line, " \t\r\n")) == 0 {
		return
	}
	if !utf8.Valid(line) {
		s.log.printf("warning: ignoring input line that is not JSON (invalid UTF-8): %s", abbreviate(line))
		return
	}
	// A map, not a struct: field names match exactly, as in the other adapters.
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(line, &msg); err != nil || msg == nil {
		var notObject *json.UnmarshalTypeError
		if msg == nil && (err == nil || errors.As(err, &notObject)) {
			s.log.printf("warning: ignoring input line that is not a JSON object: %s", abbreviate(line))
		} else {
			s.log.printf("warning: ignoring input line that is not JSON (%v): %s", err, abbreviate(line))
		}
		return
	}
	kind, kindIsString := jsonString(msg["type"])
	rawID := msg["id"]
	id, idIsString := jsonString(rawID)
	if kind == "task" && kindIsString && idIsString {
		payload := msg["payload"]
		if payload == nil {
			payload = json.RawMessage("null") // JSON.stringify drops `payload: undefined`
		}
		// Only `true` asks for a stream: anything else is a v1 task, which must get no chunk.
		key, _ := jsonString(msg["key"]) // the caller's idempotency key; "" when there is none
		s.onTask(rawID, id, payload, string(msg["stream"]) == "true", key)
		return
	}
	if kindIsString && kind == "shutdown" {
		s.sawShutdown = true
		s.beginClose()
		return
	}
	if kindIsString && kind == "restore" {
		s.onRestore(msg, line)
		return
	}
	if !kindIsString || (kind != "task" && kind != "ping" && kind != "cancel") {
		what := string(msg["type"])
		if kindIsString {
			what = kind
		}
		s.unknownType(what, line)
		return
	}
	if !idIsString {
		s.log.printf("warning: ignoring %s message without a string id: %s", kind, abbreviate(line))
		return
	}
	if kind == "ping" {
		if s.isStuck() {
			s.out.send(stuckLine(rawID, cap(s.slots)))
		} else {
			s.out.send(healthLine(rawID, s.health()))
		}
	} else {
		s.onCancel(id)
	}
}

// maxUnknownTypes bounds the unknown message types remembered, each reported once.
const maxUnknownTypes = 64

// unknownType reports a message of a type the adapter does not know (a later protocol's) the first time that type
// comes; the message is ignored.
func (s *server) unknownType(what string, line []byte) {
	if s.unknownTypes[what] {
		return
	}
	if s.unknownTypes == nil {
		s.unknownTypes = make(map[string]bool)
	}
	if len(s.unknownTypes) < maxUnknownTypes {
		s.unknownTypes[what] = true
		s.log.printf("warning: ignoring message of unknown type %q (reported once): %s", what, abbreviate(line))
	}
}

// onRestore keeps the data and the requests' checkpoints of a `restore` message, for Agent.Restored and
// Agent.RestoredRequests. It is read before any task that follows it, so a handler always sees it.
func (s *server) onRestore(msg map[string]json.RawMessage, line []byte) {
	var requests map[string]json.RawMessage
	if raw, ok := msg["requests"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &requests); err != nil {
			s.log.printf("warning: ignoring the requests of a restore message, not an object: %s", abbreviate(line))
			requests = nil
		}
	}
	s.mu.Lock()
	s.restored = msg["data"] // nil when absent: no agent checkpoint
	s.restoredRequests = requests
	s.mu.Unlock()
}

// jsonString decodes raw when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var text string
	if json.Unmarshal(raw, &text) != nil {
		return "", false
	}
	return text, true
}

// abbreviate shortens a line for a log message.
func abbreviate(line []byte) string {
	const limit = 200
	if len(line) <= limit {
		return string(line)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return string(line[:cut]) + "... (" + itoa(len(line)) + " bytes)"
}

// health is a ping's report; CPU is measured over the interval since the previous ping (or the start).
func (s *server) health() healthReport {
	now := time.Now()
	cpu := processCPU()
	percent := 0.0
	if wall := now.Sub(s.lastWall).Seconds(); wall > 0 {
		percent = (cpu - s.lastCPU).Seconds() / wall * 100
	}
	if percent < 0 {
		percent = 0
	}
	s.lastWall, s.lastCPU = now, cpu
	return healthReport{
		UptimeSeconds: round(now.Sub(processStart).Seconds(), 3),
		TotalRequests: s.totalRequests,
		MemoryMB:      round(residentMB(), 3),
		CPUPercent:    round(percent, 2),
	}
}
