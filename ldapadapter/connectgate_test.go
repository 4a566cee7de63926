package ldapadapter

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/fsm"
)

// A provider's gate lets limit connections through at once, gives a turn
// back when one leaves, lets a connection given up on go without a turn,
// and never holds up the connections to another provider.
func TestConnectGatesTakeTurnsPerProvider(t *testing.T) {
	bounded := func(t *testing.T) context.Context {
		// Bounds a wait that must succeed, so a wrong gate fails the test
		// instead of hanging it; nothing is measured against it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name  string
		limit int
		run   func(t *testing.T, g *connectGates)
	}{
		{"a full gate turns away a connection given up on", 2, func(t *testing.T, g *connectGates) {
			for range 2 {
				_, err := g.enter(bounded(t), "ldap://a")
				require.NoError(t, err)
			}
			_, err := g.enter(gaveUp, "ldap://a")
			require.ErrorIs(t, err, context.Canceled)
		}},
		{"a turn given back is taken", 1, func(t *testing.T, g *connectGates) {
			leave, err := g.enter(bounded(t), "ldap://a")
			require.NoError(t, err)
			waiting, cancel := context.WithCancel(bounded(t))
			got := make(chan error)
			go func() { _, err := g.enter(waiting, "ldap://a"); got <- err }()
			leave()
			require.NoError(t, <-got)
			cancel()
		}},
		{"another provider is not held up", 1, func(t *testing.T, g *connectGates) {
			_, err := g.enter(bounded(t), "ldap://a")
			require.NoError(t, err)
			_, err = g.enter(bounded(t), "ldap://b")
			require.NoError(t, err)
		}},
		{"a connection given up on takes no turn even with room", 1, func(t *testing.T, g *connectGates) {
			_, err := g.enter(gaveUp, "ldap://a")
			require.ErrorIs(t, err, context.Canceled)
			_, err = g.enter(bounded(t), "ldap://a")
			require.NoError(t, err)
		}},
		{"never more than the limit at once", 3, func(t *testing.T, g *connectGates) {
			var in, most atomic.Int64
			var wg sync.WaitGroup
			for range 50 {
				wg.Go(func() {
					leave, err := g.enter(bounded(t), "ldap://a")
					if err != nil {
						t.Error(err)
						return
					}
					n := in.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					for range 100 {
						runtime.Gosched()
					}
					in.Add(-1)
					leave()
				})
			}
			wg.Wait()
			require.LessOrEqual(t, most.Load(), int64(3))
			require.Positive(t, most.Load())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newConnectGates(tc.limit)) })
	}
}

// Every link of a Consumer, reconfigured or not, shares the consumer's
// gates; a link made alone has none.
func TestConsumerLinksShareConnectGates(t *testing.T) {
	c := NewConsumer()
	defer c.Shutdown()
	cfg := func(name string) LinkConfig {
		return LinkConfig{Name: name, Machine: fsm.DefaultConfig(), LDAP: Config{
			URL: "ldap://127.0.0.1:1", BaseDN: "dc=example,dc=com", Handler: HandlerFunc(func(context.Context, Change) error { return nil }),
		}}
	}
	a, err := c.Add(cfg("a"))
	require.NoError(t, err)
	b, err := c.Add(cfg("b"))
	require.NoError(t, err)
	require.NotNil(t, c.connects)
	require.Same(t, c.connects, a.adapter.Load().state.connects)
	require.Same(t, c.connects, b.adapter.Load().state.connects)
	require.NoError(t, c.Reconfigure(context.Background(), cfg("a")))
	require.Same(t, c.connects, a.adapter.Load().state.connects)

	alone, err := NewLink(cfg("alone"))
	require.NoError(t, err)
	defer alone.Close()
	require.Nil(t, alone.adapter.Load().state.connects)
}
