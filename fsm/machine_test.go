package fsm_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	lfsm "github.com/looplab/fsm"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

var quiet = fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func newMachine(t *testing.T, cfg fsm.Config, a fsm.Adapter) *fsm.Machine {
	t.Helper()
	m, err := fsm.New(cfg, a, quiet, fsm.WithName("t"))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// waitState lets the bubble settle, then checks the state.
func waitState(t *testing.T, m *fsm.Machine, want replink.State) {
	t.Helper()
	synctest.Wait()
	require.Equal(t, want, m.State())
}

func TestHappyPathAndGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeAdapter{answer: true}
		m := newMachine(t, fsm.DefaultConfig(), a)
		require.NoError(t, m.Start(t.Context()))
		waitState(t, m, replink.Persisting)
		require.EqualValues(t, 1, a.last().syncs.Load())
		require.NoError(t, m.Stop(t.Context()))
		require.Equal(t, replink.Stopped, m.State())
		require.EqualValues(t, 2, a.last().closed.Load(), "stop must close gracefully (unbind, flush)")
		require.NoError(t, m.Stop(t.Context()), "stopping a stopped link is a no-op")
	})
}

func TestBadEventsAreErrorsNotPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t, fsm.DefaultConfig(), &fakeAdapter{})
		_, err := m.Fire(t.Context(), replink.Event(200), nil)
		require.ErrorIs(t, err, fsm.ErrUnknownEvent)
		_, err = m.Fire(t.Context(), replink.KeepaliveMiss, nil)
		require.ErrorIs(t, err, replink.ErrNoTransition)
		var te *replink.TransitionError
		require.ErrorAs(t, err, &te)
		require.Equal(t, replink.Stopped, te.From)
		m.Post(replink.RefreshDone, nil) // dropped, logged
		waitState(t, m, replink.Stopped)
	})
}

// A cancelled context wedges looplab/fsm forever (upstream #115) if it
// reaches Event. The engine must never let it.
func TestCancelledContextDoesNotWedgeMachine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t, fsm.DefaultConfig(), &fakeAdapter{answer: true})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _ = m.Fire(ctx, replink.Start, nil) // may or may not run; must not wedge
		synctest.Wait()
		require.NoError(t, m.Stop(t.Context()))
		require.NoError(t, m.Start(t.Context()))
		waitState(t, m, replink.Persisting)
	})
}

func TestLooplabAgreesWithTable(t *testing.T) {
	for _, mode := range []replink.Mode{replink.RefreshAndPersist, replink.RefreshOnly} {
		for _, s := range replink.States {
			var evs lfsm.Events
			for _, tr := range replink.Table {
				if tr.Applies(mode) && tr.From == s {
					evs = append(evs, lfsm.EventDesc{Name: tr.Event.String(), Src: []string{s.String()}, Dst: tr.To.String()})
				}
			}
			f := lfsm.NewFSM(s.String(), evs, nil)
			for _, e := range replink.Events {
				_, err := replink.Lookup(s, e, mode)
				require.Equal(t, err == nil, f.Can(e.String()), "%s %s %s", mode, s, e)
			}
		}
	}
}

func TestStaleConnectionEventsAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeAdapter{}
		m := newMachine(t, fsm.DefaultConfig(), a)
		require.NoError(t, m.Start(t.Context()))
		old := a.last()
		old.sink.Post(replink.ConnectFailed, errors.New("refused"))
		waitState(t, m, replink.Polling)
		// The dropped connection reports again: must not move the link.
		old.sink.Post(replink.Connected, nil)
		waitState(t, m, replink.Polling)
		h := m.History()
		require.Len(t, h, 2)
		require.Equal(t, replink.ConnectFailed, h[1].Event)
		require.EqualError(t, h[1].Cause, "refused")
	})
}

func TestConnectTimeoutBoundsConnecting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fsm.DefaultConfig()
		cfg.ConnectTimeout = 3 * time.Second
		m := newMachine(t, cfg, &fakeAdapter{}) // never answers
		start := time.Now()
		require.NoError(t, m.Start(t.Context()))
		time.Sleep(3*time.Second + time.Millisecond)
		waitState(t, m, replink.Polling)
		h := m.History()
		require.ErrorIs(t, h[len(h)-1].Cause, fsm.ErrConnectTimeout)
		require.Equal(t, 3*time.Second, h[len(h)-1].Time.Sub(start))
	})
}

func TestTimersDieWithTheirState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t, fsm.DefaultConfig(), &fakeAdapter{})
		require.NoError(t, m.Start(t.Context()))
		require.NoError(t, m.Stop(t.Context()))
		time.Sleep(time.Hour) // connect timeout and any retry would have fired
		waitState(t, m, replink.Stopped)
		require.Len(t, m.History(), 2)
	})
}

func TestKeepalive(t *testing.T) {
	cfg := fsm.DefaultConfig()
	cfg.KeepaliveInterval, cfg.KeepaliveTimeout = time.Second, time.Second
	for _, tc := range []struct {
		name     string
		answer   bool
		answerTo int32 // probes answered before the provider hangs
		slow     bool
		want     replink.State
		minProbe int32
		// after is how long the link runs: a missed link polls, then
		// retries after a jittered backoff, so its state is looked at
		// before the earliest retry (2 s + 0.8 s), not at a random phase.
		after time.Duration
	}{
		{"answered probes keep the link", true, 0, false, replink.Persisting, 50, 100 * time.Second},
		{"unanswered probe is a miss", false, 0, false, replink.Polling, 1, 2500 * time.Millisecond},
		{"a hang after one answered probe is a miss", false, 1, false, replink.Polling, 2, 3200 * time.Millisecond},
		{"a hang after seven answered probes is a miss", false, 7, false, replink.Polling, 8, 9200 * time.Millisecond},
		{"slow consumer is not a dead provider", false, 0, true, replink.Persisting, 0, 100 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := &fakeAdapter{}
				m := newMachine(t, cfg, a)
				require.NoError(t, m.Start(t.Context()))
				c := a.last()
				c.answer = tc.answer
				c.answerTo.Store(tc.answerTo)
				c.slow.Store(tc.slow)
				c.sink.Post(replink.Connected, nil)
				c.sink.Post(replink.RefreshDone, nil)
				waitState(t, m, replink.Persisting)
				time.Sleep(tc.after)
				waitState(t, m, tc.want)
				require.GreaterOrEqual(t, c.probes.Load(), tc.minProbe)
				if tc.want == replink.Polling {
					h := m.History()
					miss := h[3]
					require.Equal(t, replink.KeepaliveMiss, miss.Event)
					var se *fsm.SilenceError
					require.ErrorAs(t, miss.Cause, &se)
					// The probe leads the interval by 1/16 to 1/8 of it, so
					// the miss comes that much before interval + timeout,
					// less the rounding up to the keepalive grid (10 ms).
					bound := cfg.KeepaliveInterval + cfg.KeepaliveTimeout
					require.LessOrEqual(t, se.Silent, bound-cfg.KeepaliveInterval/16+10*time.Millisecond, "detected inside interval + timeout, with room to spare")
					require.GreaterOrEqual(t, se.Silent, bound-cfg.KeepaliveInterval/8, "the probe waited for most of the interval")
					require.Equal(t, tc.answerTo+1, c.probes.Load(), "one probe per answered cycle, then the one that missed")
				}
			})
		})
	}
}

func TestPermanentFailureNeverRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeAdapter{}
		m := newMachine(t, fsm.DefaultConfig(), a)
		require.NoError(t, m.Start(t.Context()))
		a.last().sink.Post(replink.ConnectRefused, errors.New("invalid credentials"))
		time.Sleep(24 * time.Hour)
		waitState(t, m, replink.Failed)
		a.mu.Lock()
		require.Len(t, a.conns, 1, "no retry storm")
		a.mu.Unlock()
	})
}

func TestObserversSeeEveryTransitionInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := fsm.DefaultConfig()
		cfg.HistorySize = 3
		m := newMachine(t, cfg, &fakeAdapter{answer: true})
		var mu sync.Mutex
		var got []replink.State
		cancel := m.Observe(func(tr fsm.Transition) {
			mu.Lock()
			got = append(got, tr.To)
			mu.Unlock()
		})
		defer cancel()
		for i := 0; i < 3; i++ {
			require.NoError(t, m.Start(t.Context()))
			synctest.Wait()
			require.NoError(t, m.Stop(t.Context()))
		}
		synctest.Wait()
		mu.Lock()
		require.Equal(t, []replink.State{
			replink.Connecting, replink.Refreshing, replink.Persisting, replink.Stopped,
			replink.Connecting, replink.Refreshing, replink.Persisting, replink.Stopped,
			replink.Connecting, replink.Refreshing, replink.Persisting, replink.Stopped,
		}, got)
		mu.Unlock()
		h := m.History()
		require.Len(t, h, 3, "history is bounded")
		require.Equal(t, replink.Stopped, h[2].To)
		require.Equal(t, replink.Refreshing, h[0].To)
	})
}

func TestReconfigureRejectsInvalidConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMachine(t, fsm.DefaultConfig(), &fakeAdapter{})
		bad := fsm.DefaultConfig()
		bad.KeepaliveInterval = -time.Second
		require.ErrorIs(t, m.Reconfigure(t.Context(), bad), fsm.ErrInvalidConfig)
		require.Equal(t, fsm.DefaultConfig(), m.Config())
	})
}

func TestClosedMachine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &fakeAdapter{answer: true}
		m, err := fsm.New(fsm.DefaultConfig(), a, quiet)
		require.NoError(t, err)
		require.NoError(t, m.Start(t.Context()))
		synctest.Wait()
		require.NoError(t, m.Close())
		require.NoError(t, m.Close(), "idempotent")
		require.Equal(t, replink.Stopped, m.State(), "Close shuts the link down")
		require.EqualValues(t, 2, a.last().closed.Load())
		require.ErrorIs(t, m.Start(t.Context()), fsm.ErrClosed)
	})
}

func TestNewRejectsBadInput(t *testing.T) {
	_, err := fsm.New(fsm.DefaultConfig(), nil)
	require.ErrorIs(t, err, fsm.ErrInvalidConfig)
	bad := fsm.DefaultConfig()
	bad.ConnectTimeout = 0
	_, err = fsm.New(bad, &fakeAdapter{})
	var ce *fsm.ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "ConnectTimeout", ce.Field)
}
