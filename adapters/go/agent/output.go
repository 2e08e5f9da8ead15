package agent

import (
	"io"
	"sync"
	"time"
)

// output writes whole lines to the protocol stream from one goroutine, in the order they were handed over. Lines
// handed over while it writes go out together in its next write: a burst of responses costs one system call.
type output struct {
	w        io.Writer
	log      *logger
	onBroken func() // called once, from the writer goroutine, when a write fails

	mu      sync.Mutex
	pending []byte // whole lines, not written yet
	spare   []byte // the buffer of the previous write, reused
	closing bool
	broken  bool
	wake    chan struct{} // one token: there is something to write, or closing began
	done    chan struct{} // closed when the writer goroutine ends
}

func newOutput(w io.Writer, log *logger, onBroken func()) *output {
	return &output{w: w, log: log, onBroken: onBroken, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (o *output) start() {
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
		o.mu.Unlock()

		_, err := o.w.Write(data) // a Writer writes all of it or says why not

		o.mu.Lock()
		if cap(data) <= 1<<20 { // one big response does not keep its memory
			o.spare = data[:0]
		}
		if err != nil {
			o.broken = true
			o.pending = nil
		}
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
