package ldapadapter

import (
	"context"
	"errors"
	"time"
)

// stream is the sync search in flight on a connection. The tap hands it
// the frames of that search as they arrive, in a queue bounded in bytes
// like go-ldap's, and the session decodes each one once (decode.go).
type stream struct {
	id     int64
	frames frames
	data   chan struct{} // cap 1: a frame arrived, or reading ended
}

// startSync opens a stream for a new sync search and sends the request
// build makes for its message ID. The stream exists before the request
// leaves, so no answer can arrive to nobody.
func (t *tap) startSync(build func(id int64) ([]byte, error)) (*stream, error) {
	id := t.syncID.Add(1)
	msg, err := build(id)
	if err != nil {
		return nil, err
	}
	s := &stream{id: id, data: make(chan struct{}, 1)}
	t.mu.Lock()
	t.stream = s
	t.mu.Unlock()
	t.wmu.Lock()
	t.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = t.conn.Write(msg)
	t.conn.SetWriteDeadline(time.Time{})
	t.wmu.Unlock()
	if err != nil {
		t.closeStream(s)
		return nil, err
	}
	return s, nil
}

// closeStream forgets s; frames still queued for it are dropped.
func (t *tap) closeStream(s *stream) {
	t.mu.Lock()
	if t.stream == s {
		t.stream = nil
	}
	s.frames = frames{}
	t.mu.Unlock()
	signal(t.space)
}

// toStream queues a frame for the sync search with message ID id, waiting
// for room; a frame of a search no longer current is dropped. It reports
// false when the tap is closing.
func (t *tap) toStream(id int64, frame []byte) bool {
	return t.push(frame, func() (*frames, chan struct{}) {
		if s := t.stream; s != nil && s.id == id {
			return &s.frames, s.data
		}
		return nil, nil
	})
}

// errStalled is next's error when stall fired while nothing was queued.
var errStalled = errors.New("stream stalled")

// next returns the stream's next frame. It fails with ctx's error when the
// session stops, and with the reason reading ended once the queue is
// drained: the tap reports that loss itself. With a stall timer, waiting on
// an empty queue for longer than d fails with errStalled; a queued frame
// is returned without touching the timer.
func (t *tap) next(ctx context.Context, s *stream, stall *time.Timer, d time.Duration) ([]byte, error) {
	for {
		t.mu.Lock()
		if s.frames.len() > 0 {
			f := s.frames.pop()
			t.mu.Unlock()
			signal(t.space)
			return f, nil
		}
		err := t.err
		t.mu.Unlock()
		if err != nil {
			return nil, err
		}
		var stalled <-chan time.Time
		if stall != nil {
			stall.Reset(d)
			stalled = stall.C
		}
		select {
		case <-s.data:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stalled:
			return nil, errStalled
		}
	}
}
