package agent

import (
	"context"
	"io"
	"sync"
	"time"
)

// output writes whole lines to the protocol stream from one goroutine, in the order they were handed over. Lines
// handed over while it writes go out together in its next write: a burst of responses costs one system call.
//
// Responses, ping answers and refusals are queued at once, whatever is queued already (the goroutine reading the
// input must never wait for the writer). Chunks and checkpoints, which a handler can produce faster than the
// supervisor reads, go through sendWhenRoom, which waits while bound bytes or more are queued or being written;
// publishes through sendEachWhenRoom, the same but for what it does before start.
type output struct {
	w        io.Writer // set before start
	log      *logger
	onBroken func() // called once, from the writer goroutine, when a write fails
	bound    int

	mu      sync.Mutex
	started bool   // the writer goroutine runs
	early   []byte // the latest line sendWhenRoom was given before start: queued by start, after the lines before
	pending []byte // whole lines, not written yet
	spare   []byte // the buffer of the previous write, reused
	writing int    // bytes of the write under way
	closing bool
	broken  bool
	wake    chan struct{} // one token: there is something to write, or closing began
	room    chan struct{} // closed, and replaced, when a write ends or the output closes: waiting senders look again
	done    chan struct{} // closed when the writer goroutine ends
}

func newOutput(bound int, log *logger, onBroken func()) *output {
	return &output{
		log: log, onBroken: onBroken, bound: bound,
		wake: make(chan struct{}, 1), room: make(chan struct{}), done: make(chan struct{}),
	}
}

func (o *output) start(w io.Writer) {
	o.w = w
	o.mu.Lock()
	o.started = true
	o.pending = append(o.pending, o.early...)
	o.early = nil
	o.mu.Unlock()
	go o.run()
}

// send queues one line (ending in a newline); false once the stream has failed or is closed.
func (o *output) send(line []byte) bool {
	o.mu.Lock()
	if o.broken || o.closing {
		o.mu.Unlock()
		return false
	}
	o.pending = append(o.pending, line...)
	o.mu.Unlock()
	o.signal()
	return true
}

// sendWhenRoom queues one line once fewer than bound bytes are queued or being written (the line itself may take
// the queue over the bound). It gives up with ctx.Err() when ctx (nil: none) is done first, and with ErrClosed when
// the stream has failed or is closed. A line is queued only while ctx is not done: one queued after the context
// was cancelled is never sent.
func (o *output) sendWhenRoom(ctx context.Context, line []byte) error {
	return o.queueWhenRoom(ctx, line, true)
}

// sendEachWhenRoom is sendWhenRoom for lines that all count (publishes): before start each one is queued, after the
// lines before it, rather than replacing the one before.
func (o *output) sendEachWhenRoom(ctx context.Context, line []byte) error {
	return o.queueWhenRoom(ctx, line, false)
}

func (o *output) queueWhenRoom(ctx context.Context, line []byte, latestOnly bool) error {
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	o.mu.Lock()
	if !o.started {
		// Nothing is written yet, so waiting for room would wait for ever. An agent checkpoint made before Run keeps
		// only the latest (a later one replaces it, as the supervisor keeps only the latest), sent after the rest.
		if latestOnly {
			o.early = append(o.early[:0], line...)
		} else {
			o.pending = append(o.pending, line...)
		}
		o.mu.Unlock()
		return nil
	}
	for {
		if o.broken || o.closing {
			o.mu.Unlock()
			return ErrClosed
		}
		if ctx != nil && ctx.Err() != nil {
			o.mu.Unlock()
			return ctx.Err()
		}
		if len(o.pending)+o.writing < o.bound {
			break
		}
		room := o.room
		o.mu.Unlock()
		select {
		case <-room:
		case <-done:
		}
		o.mu.Lock()
	}
	o.pending = append(o.pending, line...)
	o.mu.Unlock()
	o.signal()
	return nil
}

// freeRoomLocked wakes the senders waiting for room.
func (o *output) freeRoomLocked() {
	close(o.room)
	o.room = make(chan struct{})
}

func (o *output) signal() {
	select {
	case o.wake <- struct{}{}:
	default: // a token is there already
	}
}

func (o *output) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		for len(o.pending) == 0 && !o.closing {
			o.mu.Unlock()
			<-o.wake
			o.mu.Lock()
		}
		if len(o.pending) == 0 { // closing, and all written
			o.mu.Unlock()
			return
		}
		data := o.pending
		o.pending, o.spare = o.spare[:0], nil
		o.writing = len(data)
		o.mu.Unlock()

		_, err := o.w.Write(data) // a Writer writes all of it or says why not

		o.mu.Lock()
		if cap(data) <= 1<<20 { // one big response does not keep its memory
			o.spare = data[:0]
		}
		o.writing = 0
		if err != nil {
			o.broken = true
			o.pending = nil
		}
		o.freeRoomLocked()
		o.mu.Unlock()
		if err != nil {
			o.log.printf("stdout failed (%v); responses are dropped from now on", err)
			o.onBroken()
			// Go on until close: nothing more is queued.
		}
	}
}

// close writes what is queued, then stops the writer; it waits for that until deadline (forever when zero).
func (o *output) close(deadline time.Time) {
	o.mu.Lock()
	o.closing = true
	o.freeRoomLocked()
	o.mu.Unlock()
	o.signal()
	if deadline.IsZero() {
		<-o.done
		return
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-o.done:
	case <-timer.C:
	}
}
