package fsm_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// fakeAdapter records what the machine asks of it and lets a test report
// events as the connection would. With answer set, it connects and refreshes
// on its own.
type fakeAdapter struct {
	mu     sync.Mutex
	conns  []*fakeConn
	answer bool
}

type fakeConn struct {
	sink     fsm.Sink
	lastRead atomic.Int64
	syncs    atomic.Int32
	probes   atomic.Int32
	closed   atomic.Int32 // 1 dropped, 2 graceful
	answer   bool
	answerTo atomic.Int32 // probes up to this many are answered, whatever answer says
	slow     atomic.Bool  // consumer is the bottleneck: LastRead reports now
}

func (a *fakeAdapter) Connect(ctx context.Context, s fsm.Sink) fsm.Conn {
	c := &fakeConn{sink: s, answer: a.answer}
	c.lastRead.Store(time.Now().UnixNano())
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	if c.answer {
		s.Post(replink.Connected, nil)
	}
	return c
}

func (a *fakeAdapter) last() *fakeConn {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.conns) == 0 {
		return nil
	}
	return a.conns[len(a.conns)-1]
}

func (c *fakeConn) Sync(req fsm.SyncRequest) {
	c.syncs.Add(1)
	if c.answer {
		c.sink.Post(replink.RefreshDone, nil)
	}
}

func (c *fakeConn) Probe() {
	if n := c.probes.Add(1); c.answer || n <= c.answerTo.Load() {
		c.lastRead.Store(time.Now().UnixNano())
	}
}

func (c *fakeConn) LastRead() time.Time {
	if c.slow.Load() {
		return time.Now()
	}
	return time.Unix(0, c.lastRead.Load())
}

func (c *fakeConn) Close(graceful bool) {
	if graceful {
		c.closed.Store(2)
	} else {
		c.closed.Store(1)
	}
}
