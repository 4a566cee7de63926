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
)

// RFC 4533 §3.1 against slapd: a reconfiguration to a wider filter must
// bring the whole new content (syncprov answers a kept cookie with only what
// changed since), and one back to a narrower filter must prune what fell
// out of scope.
func TestReconfigureContentAgainstSlapd(t *testing.T) {
	srv := slapdtest.Start(t)
	require.NoError(t, srv.Write(6))
	store := ldapadapter.NewMemoryStore()
	cookies := &ldapadapter.MemoryCookieStore{}
	narrow := linkConfig("p", srv.URL(), store, cookies)
	narrow.LDAP.BaseDN = slapdtest.PeopleDN
	narrow.LDAP.Filter = "(objectClass=organizationalUnit)" // ou=people alone
	wide := narrow
	wide.LDAP.Filter = "(objectClass=*)"
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	l := startLink(t, ctx, narrow)
	require.Len(t, store.Snapshot(), 1)

	inSync := func() error {
		want, err := srv.Snapshot(ctx, slapdtest.PeopleDN)
		if err != nil {
			return err
		}
		return realtarget.DiffTrees(want, store.Snapshot())
	}
	require.NoError(t, l.Reconfigure(ctx, wide))
	_, err := l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.NoError(t, srv.Write(2))
	require.Eventually(t, func() bool { return inSync() == nil }, 5*time.Second, 50*time.Millisecond, "wider filter: %v", inSync())

	require.NoError(t, l.Reconfigure(ctx, narrow))
	_, err = l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Len(t, store.Snapshot(), 1, "narrower filter: what fell out of scope is pruned")
}

// LDAP 53 against slapd: a cookie newer than the provider's state (as after
// a restore from an older backup) is refused; the link reports
// ErrProviderBehind, retries with backoff keeping the cookie, and an
// admin's Reload brings the copy back in line.
func TestProviderBehindAgainstSlapd(t *testing.T) {
	srv := slapdtest.Start(t)
	require.NoError(t, srv.Write(5))
	store := ldapadapter.NewMemoryStore()
	cookies := &ldapadapter.MemoryCookieStore{}
	cfg := linkConfig("p", srv.URL(), store, cookies)
	cfg.Machine.Backoff.Initial = 200 * time.Millisecond
	future := "rid=000,csn=29991231235959.999999Z#000000#000#000000"
	baseUUID := entryUUID(t, srv, slapdtest.BaseDN)
	require.NoError(t, cookies.Save(ldapadapter.StoredCookieUnder(cfg.LDAP, baseUUID, future)))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	l, err := ldapadapter.NewLink(cfg, fsm.WithLogger(discard))
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, l.Start(ctx))
	_, err = l.WaitFor(ctx, replink.Failed)
	require.NoError(t, err)
	h := l.History()
	last := h[len(h)-1]
	require.Equal(t, replink.Exception, last.Event)
	require.ErrorIs(t, last.Cause, ldapadapter.ErrProviderBehind)
	stored, err := cookies.Load()
	require.NoError(t, err)
	require.Equal(t, ldapadapter.StoredCookieUnder(cfg.LDAP, baseUUID, future), stored, "the cookie is kept while the link retries")

	require.NoError(t, l.Reload(ctx))
	_, err = l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		want, err := srv.Snapshot(ctx, slapdtest.BaseDN)
		return err == nil && realtarget.DiffTrees(want, store.Snapshot()) == nil
	}, 5*time.Second, 50*time.Millisecond)
}

// The search base replaced while the link was stopped: no persistent
// search is there to receive e-syncRefreshRequired, and syncprov answers
// the old cookie with what changed since under the new base, never
// deleting the old base's entries. The link sees that the base entry is
// another one (its entryUUID) and reloads.
func TestBaseReplacedWhileStoppedAgainstSlapd(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(20))
	store := ldapadapter.NewMemoryStore()
	cfg := linkConfig("p", srv.URL(), store, nil)
	cfg.LDAP.BaseDN = slapdtest.PeopleDN
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l := startLink(t, ctx, cfg)
	require.NoError(t, l.Stop(ctx))

	require.NoError(t, srv.ReplaceBase())
	require.NoError(t, srv.Write(3))
	require.NoError(t, l.Start(ctx))
	_, err := l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		want, err := srv.Snapshot(ctx, slapdtest.PeopleDN)
		return err == nil && realtarget.DiffTrees(want, store.Snapshot()) == nil
	}, 5*time.Second, 50*time.Millisecond, "%v", func() error {
		want, _ := srv.Snapshot(ctx, slapdtest.PeopleDN)
		return realtarget.DiffTrees(want, store.Snapshot())
	}())
}

// Deletions made while the link was away, then the provider restarted.
// slapd keeps its session log in memory: killed, it restarts with an empty
// log whose lower bound is the contextCSN it last checkpointed
// (syncprov-checkpoint 100 10 here), older than the link's cookie. Once
// written to again, it answers that cookie with a delete phase that names
// none of the deletions made before the crash, and the changed entries
// from its database: without the link's own listing of the content
// (audit.go) the copy keeps the deleted entry for ever. TestSoak found it:
// a library link away on a black-holed path while the writer deleted, then
// the provider killed. A clean stop checkpoints, so its log's bound is
// exact and slapd runs a present phase instead.
func TestDeletionsBeforeAProviderRestartAgainstSlapd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(*slapdtest.Server)
	}{
		{"killed (SIGKILL): the session log is lost, its bound lags", func(s *slapdtest.Server) { s.Kill(); s.Launch() }},
		{"stopped cleanly (SIGTERM)", func(s *slapdtest.Server) { s.Stop(); s.Launch() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := slapdtest.Start(t, slapdtest.WithPeople(20))
			store := ldapadapter.NewMemoryStore()
			cfg := linkConfig("p", srv.URL(), store, nil) // the cookie lives in the link across Stop and Start
			cfg.LDAP.BaseDN = slapdtest.PeopleDN
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			diff := func() error {
				want, err := srv.Snapshot(ctx, slapdtest.PeopleDN)
				if err != nil {
					return err
				}
				return realtarget.DiffTrees(want, store.Snapshot())
			}
			l := startLink(t, ctx, cfg)
			// A few writes, fewer than the checkpoint's 100: the cookie
			// is then newer than the checkpointed contextCSN.
			require.NoError(t, srv.Write(3))
			require.Eventually(t, func() bool { return diff() == nil }, 10*time.Second, 50*time.Millisecond, "before the stop")
			require.NoError(t, l.Stop(ctx))

			c, err := srv.Admin()
			require.NoError(t, err)
			res, err := c.Search(ldap.NewSearchRequest(slapdtest.PeopleDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=inetOrgPerson)", []string{"1.1"}, nil))
			require.NoError(t, err)
			require.NotEmpty(t, res.Entries)
			gone := res.Entries[0].DN
			require.NoError(t, c.Del(ldap.NewDelRequest(gone, nil)))
			c.Close()
			tc.restart(srv)
			// One write after the restart: slapd's contextCSN passes the
			// cookie again (before it, slapd refuses the cookie with 53)
			// and its new session log is not empty.
			require.NoError(t, srv.Write(1))

			require.NoError(t, l.Start(ctx))
			_, err = l.WaitFor(ctx, replink.Persisting)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return diff() == nil }, 10*time.Second, 50*time.Millisecond,
				"%s was deleted before the restart: %v", gone, diff())
		})
	}
}

func entryUUID(t *testing.T, srv *slapdtest.Server, dn string) string {
	c, err := srv.Admin()
	require.NoError(t, err)
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"entryUUID"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	return res.Entries[0].GetAttributeValue("entryUUID")
}
