package ldapadapter_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// One link, two OpenLDAP providers that are multi-provider replicas of each
// other. When the one in use hangs or dies, the link moves to the other
// within the detection bound plus one backoff step, keeping its cookie;
// writes made on either side reach the copy; when the first comes back
// nothing is duplicated or lost.
func TestFailoverBetweenProviders(t *testing.T) {
	a, b := slapdtest.StartPair(t, 20)
	db, err := store.Open(t.TempDir()+"/r.db", nil)
	require.NoError(t, err)
	defer db.Close()
	copy, err := db.Link("mp", store.Content{BaseDN: slapdtest.BaseDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(t, err)
	cfg := linkConfig("mp", "", copy, nil)
	cfg.LDAP.URLs = []string{a.URL(), b.URL()}
	cfg.Machine.Backoff.Initial, cfg.Machine.Backoff.Jitter = 200*time.Millisecond, 0
	l, err := ldapadapter.NewLink(cfg, fsm.WithLogger(discard))
	require.NoError(t, err)
	defer l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	trs := make(chan fsm.Transition, 64)
	defer l.Watch(func(tr fsm.Transition) { trs <- tr })()
	require.NoError(t, l.Start(ctx))
	_, err = l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Equal(t, a.URL(), l.Provider())

	inSync := func(srv *slapdtest.Server) func() bool {
		return func() bool {
			want, err := srv.Snapshot(ctx, slapdtest.BaseDN)
			if err != nil {
				return false
			}
			got := map[string]map[string][]string{}
			require.NoError(t, db.Each("mp", func(e *ldap.Entry) error { got[e.DN] = ldapadapter.EntryAttributes(e); return nil }))
			return realtarget.DiffTrees(want, got) == nil
		}
	}
	require.NoError(t, a.Write(4))
	require.Eventually(t, inSync(a), 10*time.Second, 50*time.Millisecond)

	// a hangs: detected by the keepalive (1 s + 1 s), then one backoff
	// step (200 ms) and the link is on b.
	drainTransitions(trs)
	hung := time.Now()
	a.Pause()
	onB := waitTransition(t, trs, replink.Persisting, 10*time.Second)
	require.Equal(t, b.URL(), onB.Peer)
	require.LessOrEqual(t, onB.Time.Sub(hung), 2*time.Second+200*time.Millisecond+time.Second, "failover took %v", onB.Time.Sub(hung))
	require.NoError(t, b.Write(5))
	require.Eventually(t, inSync(b), 10*time.Second, 50*time.Millisecond)
	a.Resume()

	// b dies: the link goes back to a, which caught up with b meanwhile.
	drainTransitions(trs)
	b.Kill()
	onA := waitTransition(t, trs, replink.Persisting, 10*time.Second)
	require.Equal(t, a.URL(), onA.Peer)
	require.NoError(t, a.Write(3))
	require.NoError(t, a.Delete(2))
	require.Eventually(t, inSync(a), 10*time.Second, 50*time.Millisecond)
	n, err := copy.Len()
	require.NoError(t, err)
	want, err := a.Snapshot(ctx, slapdtest.BaseDN)
	require.NoError(t, err)
	require.Equal(t, len(want), n, "entries counted by UUID: nothing duplicated")
	b.Launch()
}

func drainTransitions(c chan fsm.Transition) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func waitTransition(t *testing.T, c chan fsm.Transition, to replink.State, within time.Duration) fsm.Transition {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case tr := <-c:
			if tr.To == to {
				return tr
			}
		case <-deadline:
			t.Fatalf("no transition to %s within %v", to, within)
		}
	}
}
