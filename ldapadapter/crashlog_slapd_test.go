package ldapadapter_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

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
