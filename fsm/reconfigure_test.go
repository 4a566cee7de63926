package fsm_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// stuckCloser is an adapter whose connections take a while to close, so a
// request can sit in the machine's mailbox behind the close.
type stuckCloser struct {
	fakeAdapter
	hold chan struct{}
}

func (a *stuckCloser) Connect(ctx context.Context, s fsm.Sink) fsm.Conn {
	return &stuckConn{Conn: a.fakeAdapter.Connect(ctx, s), hold: a.hold}
}

type stuckConn struct {
	fsm.Conn
	hold chan struct{}
}

func (c *stuckConn) Close(graceful bool) { <-c.hold; c.Conn.Close(graceful) }

// A reconfiguration happens whole or not at all, and Reconfigure says
// which: one whose caller gave up while it was queued must never run later.
func TestReconfigureWholeOrNotAtAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		old := &stuckCloser{fakeAdapter: fakeAdapter{answer: true}, hold: make(chan struct{})}
		m := newMachine(t, fsm.DefaultConfig(), old)
		require.NoError(t, m.Start(t.Context()))
		waitState(t, m, replink.Persisting)

		go m.Stop(context.Background()) // the machine is now busy closing
		synctest.Wait()
		cfg := fsm.DefaultConfig()
		cfg.KeepaliveInterval, cfg.KeepaliveTimeout = 50*time.Second, 5*time.Second
		replacement := &fakeAdapter{answer: true}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := m.ReconfigureAdapter(ctx, cfg, replacement)
		cancel()
		if !errors.Is(err, fsm.ErrNotApplied) {
			close(old.hold)
			t.Fatalf("got %v", err)
		}
		require.ErrorIs(t, err, context.DeadlineExceeded)

		close(old.hold)
		synctest.Wait()
		require.Equal(t, replink.Stopped, m.State())
		require.Equal(t, fsm.DefaultConfig().KeepaliveInterval, m.Config().KeepaliveInterval, "the abandoned reconfiguration ran after all")
		require.NoError(t, m.Start(t.Context()))
		waitState(t, m, replink.Persisting)
		require.Nil(t, replacement.last(), "the abandoned adapter was used")
		require.Len(t, old.conns, 2)

		// Taken by the machine before the caller gives up: applied, and
		// reported as applied even though ctx ended meanwhile.
		old.hold = make(chan struct{})
		ctx, cancel = context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.ReconfigureAdapter(ctx, cfg, replacement) }()
		synctest.Wait() // the machine is inside the old connection's Close
		cancel()
		close(old.hold)
		require.NoError(t, <-done)
		waitState(t, m, replink.Persisting)
		require.Equal(t, 50*time.Second, m.Config().KeepaliveInterval)
		require.NotNil(t, replacement.last())
	})
}
