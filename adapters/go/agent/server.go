package agent

import (
	"context"
	"encoding/json"
	"runtime/debug"
	"sync"
	"time"
)

const (
	// After stdin EOF without shutdown: how long cancelled handlers may take to return, and when Run returns
	// whatever they do.
	abandonGrace    = 500 * time.Millisecond
	abandonDeadline = 900 * time.Millisecond
	// After the drain bound: how long handlers whose contexts were cancelled may take to return.
	drainGrace = 500 * time.Millisecond
)

// task is one task in flight: read, not answered, not cancelled upstream.
type task struct {
	req       Request
	srv       *server
	rawID     []byte // the id as it came, echoed in the response
	streaming bool   // sent with "stream":true
	// ctx is the handler's: done when the task is cancelled (upstream, past the drain bound, the supervisor gone)
	// and when the handler has returned. Nothing is sent or kept for the task once it is done.
	ctx    context.Context
	cancel context.CancelFunc
	// cancelled upstream (`cancel`, or the supervisor is gone): send nothing for it. Guarded by server.mu.
	cancelled bool
	// Its handler holds a slot: notRunning, running, or stuckRunning (cancelled upstream and not returned: counted
	// in server.stuck). Guarded by server.mu.
	running int

	mu     sync.Mutex
	pieces [][]byte // what Send collected for a task that does not stream, encoded
}

const (
	notRunning = iota
	running
	stuckRunning
)

// collected is the list of the pieces Send collected, or nil when there are none.
func (t *task) collected() json.RawMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pieces) == 0 {
		return nil
	}
	return listOf(t.pieces)
}

type server struct {
	handler Handler
	opts    Options
	log     *logger
	out     *output
	agent   *Agent        // the handle of this server, for Request.Agent
	slots   chan struct{} // one per handler running

	mu          sync.Mutex
	inflight    map[string]*task
	closing     bool
	closingCh   chan struct{} // closed when closing begins
	drainedCh   chan struct{} // closed when closing and nothing is in flight
	drained     bool
	abandoned   bool // stdin EOF without shutdown
	abandonedAt time.Time
	exitCode    int
	// Slots held by handlers whose tasks were cancelled upstream and that have not returned (a goroutine cannot be
	// stopped): when they are all the slots, no task can run, and pings are answered with an error (stuckLine).
	stuck       int
	stuckLogged bool
	// The last `restore` message's data and requests.
	restored         json.RawMessage
	restoredRequests map[string]json.RawMessage

	handlers sync.WaitGroup // handler goroutines, cancelled ones included

	// Only the goroutine that reads the input touches these.
	sawShutdown   bool
	totalRequests int64
	lastWall      time.Time
	lastCPU       time.Duration
	unknownTypes  map[string]bool // the unknown message types reported already
}

// newServer makes the server of agent a; its output holds the ready line, the first out.
func newServer(a *Agent, h Handler, opts Options, log *logger) *server {
	s := &server{
		agent:     a,
		handler:   h,
		opts:      opts,
		log:       log,
		slots:     make(chan struct{}, opts.MaxConcurrency),
		inflight:  make(map[string]*task),
		closingCh: make(chan struct{}),
		drainedCh: make(chan struct{}),
		lastWall:  processStart,
	}
	s.out = newOutput(opts.MaxQueuedBytes, log, func() { s.beginClose() })
	s.out.send(readyLine())
	return s
}

func (s *server) serve() int {
	s.out.start(s.opts.Output)
	go s.read()
	<-s.closingCh
	s.drain()
	s.mu.Lock()
	abandoned, at, code := s.abandoned, s.abandonedAt, s.exitCode
	s.mu.Unlock()
	if !abandoned {
		s.out.close(time.Time{})
		return ExitOK
	}
	// Nobody can receive a result: give the cancelled handlers their grace, then go whatever they do.
	waitTimeout(&s.handlers, time.Until(at.Add(abandonGrace)))
	s.out.close(at.Add(abandonDeadline))
	return code
}

// drain waits until nothing is in flight (an abandon empties it at once), cancelling what still runs past the
// drain bound.
func (s *server) drain() {
	if s.opts.DrainTimeout < 0 {
		<-s.drainedCh
		return
	}
	bound := time.NewTimer(s.opts.DrainTimeout)
	defer bound.Stop()
	select {
	case <-s.drainedCh:
		return
	case <-bound.C:
	}
	s.mu.Lock()
	running := make([]*task, 0, len(s.inflight))
	for _, t := range s.inflight {
		running = append(running, t)
	}
	s.mu.Unlock()
	s.log.printf("%d task(s) still in flight %v into the drain: cancelling their contexts", len(running),
		s.opts.DrainTimeout)
	for _, t := range running {
		t.cancel() // not cancelled upstream: what the handler returns is still sent
	}
	grace := time.NewTimer(drainGrace)
	defer grace.Stop()
	select {
	case <-s.drainedCh:
	case <-grace.C:
		s.log.printf("exiting with cancelled handlers still running")
	}
}

// beginClose stops accepting tasks; the drain follows.
func (s *server) beginClose() {
	s.mu.Lock()
	s.beginCloseLocked()
	s.mu.Unlock()
}

func (s *server) beginCloseLocked() {
	if !s.closing {
		s.closing = true
		close(s.closingCh)
	}
	s.checkDrainedLocked()
}

func (s *server) checkDrainedLocked() {
	if s.closing && !s.drained && len(s.inflight) == 0 {
		s.drained = true
		close(s.drainedCh)
	}
}

// endOfInput: after `shutdown` the drain goes on; without it the supervisor is gone, so what runs is cancelled.
func (s *server) endOfInput() {
	if s.sawShutdown {
		s.beginClose()
		return
	}
	s.mu.Lock()
	cancelled := make([]*task, 0, len(s.inflight))
	for id, t := range s.inflight {
		t.cancelled = true
		cancelled = append(cancelled, t)
		delete(s.inflight, id)
	}
	s.abandoned = true
	s.abandonedAt = time.Now()
	s.exitCode = ExitOK
	if len(cancelled) > 0 {
		s.exitCode = ExitAbandoned
	}
	s.mu.Unlock()
	// Logged before the close begins: Serve may exit as soon as it has.
	s.log.printf("stdin closed without shutdown: nobody can receive results; exiting within 1 s")
	if len(cancelled) > 0 {
		s.log.printf("cancelling %d task(s) in flight", len(cancelled))
	}
	for _, t := range cancelled {
		t.cancel()
	}
	s.beginClose()
}

func (s *server) onTask(rawID []byte, id string, payload []byte, streaming bool, key string) {
	s.totalRequests++
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		// Answered rather than dropped, so that the caller fails at once instead of waiting for its timeout.
		s.out.send(refusalLine(rawID))
		return
	}
	if _, duplicate := s.inflight[id]; duplicate {
		s.mu.Unlock()
		s.log.printf("warning: ignoring task with duplicate in-flight id %q", id)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{srv: s, rawID: rawID, streaming: streaming, ctx: ctx, cancel: cancel}
	t.req = Request{ID: id, Payload: payload, Key: key, t: t}
	s.inflight[id] = t
	s.handlers.Add(1)
	s.mu.Unlock()
	go s.run(ctx, t)
}

func (s *server) onCancel(id string) {
	s.mu.Lock()
	t := s.inflight[id]
	logStuck := false
	if t != nil {
		t.cancelled = true
		delete(s.inflight, id) // the drain does not wait for it
		if t.running == running {
			t.running = stuckRunning
			s.stuck++
			logStuck = s.stuck >= cap(s.slots) && !s.stuckLogged
			s.stuckLogged = s.stuckLogged || logStuck
		}
		s.checkDrainedLocked()
	}
	s.mu.Unlock()
	if t != nil {
		t.cancel()
	}
	if logStuck {
		s.log.printf("warning: %s", stuckMessage(cap(s.slots)))
	}
	// Not in flight: already answered (the response crossed the cancel on the wire), or unknown.
}

// run runs one task in its goroutine: waits for a slot, calls the handler, answers. A panic, or runtime.Goexit,
// in the handler or in the encoding of its result is an error response.
func (s *server) run(ctx context.Context, t *task) {
	var line []byte
	returned := false
	defer func() {
		if !returned {
			if v := recover(); v != nil {
				line = panicLine(t.rawID, v, debug.Stack())
			} else {
				line = goexitLine(t.rawID)
			}
		}
		s.finish(t, line)
		s.handlers.Done()
	}()
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		line, returned = errorLine(t.rawID, ctx.Err()), true
		return
	}
	defer func() {
		s.leave(t)
		<-s.slots
	}()
	s.mu.Lock()
	if t.cancelled { // upstream, while it waited: both cases were ready, or the context is not done yet
		s.mu.Unlock()
		line, returned = errorLine(t.rawID, context.Canceled), true
		return
	}
	t.running = running
	s.mu.Unlock()
	if err := ctx.Err(); err != nil { // cancelled while it waited (the drain bound, the supervisor gone)
		line, returned = errorLine(t.rawID, err), true
		return
	}
	result, err := s.handler(ctx, &t.req)
	t.cancel() // the handler is done: Send sends and keeps nothing more (a goroutine it left running gets ctx.Err())
	if err != nil {
		line = errorLine(t.rawID, err)
	} else {
		if pieces := t.collected(); pieces != nil {
			result = pieces // a task that does not stream: what Send collected is the result
		}
		line = resultLine(t.rawID, result)
	}
	returned = true
}

// leave notes that t's handler gave its slot back (it returned, or never ran); a stuck one frees the pool again.
func (s *server) leave(t *task) {
	s.mu.Lock()
	freed := t.running == stuckRunning
	t.running = notRunning
	logFreed := false
	if freed {
		s.stuck--
		logFreed = s.stuckLogged
		s.stuckLogged = false
	}
	s.mu.Unlock()
	if logFreed {
		s.log.printf("a cancelled handler returned: a slot is free again, and pings are answered")
	}
}

// isStuck tells whether every slot is held by a handler whose task was cancelled upstream.
func (s *server) isStuck() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stuck >= cap(s.slots)
}

// finish sends the task's line unless it was cancelled upstream, and takes it out of flight. The line is handed
// to the output before the task leaves `inflight`, so that the drain cannot end before it is queued. The task's
// context is cancelled first, so that no chunk of it can be queued after its response.
func (s *server) finish(t *task, line []byte) {
	t.cancel()
	s.mu.Lock()
	if !t.cancelled && line != nil {
		s.out.send(line)
	}
	if s.inflight[t.req.ID] == t {
		delete(s.inflight, t.req.ID)
	}
	s.checkDrainedLocked()
	s.mu.Unlock()
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	if d <= 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}
