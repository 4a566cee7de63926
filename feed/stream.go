package feed

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// streamQueue is how many lines may wait for a slow reader before Write
// waits too.
const streamQueue = 256

// graceAfterDeadline is how long Close waits for the writing goroutine
// once it has set a write deadline in the past to unblock it.
const graceAfterDeadline = time.Second

// stream writes a feed's lines to a pipe or a terminal from a goroutine of
// its own, fed by a bounded queue. A write(2) to a pipe whose reader has
// stopped blocks for ever; done under the Writer's lock, it would block
// every link's commit and the daemon's shutdown. Here only the goroutine
// blocks: Write, Sync and Close wait for it at most the stall timeout
// without progress, then fail with ErrStalled, and the link retries.
//
// Close cannot take back a write(2) under way. If it has not ended within
// the stall timeout, Close sets a write deadline in the past on the
// writer when it has SetWriteDeadline (an *os.File from os.Pipe, or any
// pipe or socket opened non-blocking: the runtime poller then ends the
// write with os.ErrDeadlineExceeded); a descriptor in blocking mode (a
// process's stdout usually is) refuses deadlines, and the goroutine is
// then abandoned, blocked until the reader reads or the process exits.
type stream struct {
	w     io.Writer
	stall time.Duration
	q     chan []byte
	stop  chan struct{} // closed when the goroutine has returned

	mu       sync.Mutex
	sent     int64         // lines queued
	written  int64         // lines written
	progress chan struct{} // closed, and replaced, at each line written
	err      error         // why the goroutine stopped: nothing more is written
}

func newStream(w io.Writer, stall time.Duration) *stream {
	s := &stream{w: w, stall: stall, q: make(chan []byte, streamQueue),
		stop: make(chan struct{}), progress: make(chan struct{})}
	go s.run()
	return s
}

// run writes the queued lines until the queue is closed or a write fails.
func (s *stream) run() {
	defer close(s.stop)
	for line := range s.q {
		_, err := s.w.Write(line)
		s.mu.Lock()
		if err != nil {
			s.err = streamError(err)
		} else {
			s.written++
		}
		close(s.progress)
		s.progress = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// streamError says what a failed write means for the feed's user.
func streamError(err error) error {
	switch {
	case errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("%w: %w", ErrReaderGone, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrStalled, err)
	}
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// failed is the error that stopped the goroutine, if any.
func (s *stream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// send queues line, waiting at most the stall timeout for room.
func (s *stream) send(line []byte) error {
	t := time.NewTimer(s.stall)
	defer t.Stop()
	select {
	case s.q <- line:
		s.mu.Lock()
		s.sent++
		s.mu.Unlock()
		return nil
	case <-s.stop:
		return s.failed()
	case <-t.C:
		return fmt.Errorf("%w: no line taken for %v", ErrStalled, s.stall)
	}
}

// flush waits until every queued line is written, or the reader has taken
// nothing for the stall timeout.
func (s *stream) flush() error {
	t := time.NewTimer(s.stall)
	defer t.Stop()
	for {
		s.mu.Lock()
		done, err, progress := s.written >= s.sent, s.err, s.progress
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-progress:
			t.Reset(s.stall)
		case <-s.stop:
		case <-t.C:
			return fmt.Errorf("%w: %d lines not taken for %v", ErrStalled, s.sent-s.written, s.stall)
		}
	}
}

// close ends the queue and waits, at most the stall timeout in all, for
// the goroutine to write what is queued; then it unblocks or abandons the
// goroutine (see stream).
func (s *stream) close() error {
	close(s.q)
	t := time.NewTimer(s.stall)
	defer t.Stop()
	select {
	case <-s.stop:
		return s.failed()
	case <-t.C:
	}
	s.mu.Lock()
	left := s.sent - s.written
	s.mu.Unlock()
	err := fmt.Errorf("%w: closed with %d lines not taken in %v", ErrStalled, left, s.stall)
	d, ok := s.w.(interface{ SetWriteDeadline(time.Time) error })
	if !ok || d.SetWriteDeadline(time.Now()) != nil {
		return fmt.Errorf("%w; its writer is abandoned, blocked", err)
	}
	select {
	case <-s.stop:
	case <-time.After(graceAfterDeadline):
		return fmt.Errorf("%w; its writer is abandoned, blocked", err)
	}
	return err
}
