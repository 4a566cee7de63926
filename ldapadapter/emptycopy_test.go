package ldapadapter_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// knownCounted is the daemon's bbolt link, counting the times the link
// asks it for the list of its copy.
type knownCounted struct {
	*store.Link
	calls atomic.Int32
}

func (k *knownCounted) Known(ctx context.Context) ([]uuid.UUID, error) {
	k.calls.Add(1)
	return k.Link.Known(ctx)
}

// A reload ends in a prune of what the provider did not name; into a copy
// that held nothing when the session began (a Counter says so) there is
// nothing to prune, and the link lists nothing: the scan of the whole copy
// used to come right before refresh-done. A copy that held entries is
// listed and pruned as before, and so is the copy at the end of a present
// phase from a cookie, which is no reload.
func TestWireReloadIntoEmptyCopyListsNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kept   int    // entries the copy holds before the refresh
		cookie string // stored before the refresh; none: a reload
		listed bool   // Known asked
	}{
		{"reload into an empty copy", 0, "", false},
		{"reload into a copy holding entries the provider no longer has", 2, "", true},
		{"refresh from a cookie into an empty copy", 0, "cookie-0", true}, // not a reload: what it names is remembered
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), &store.Options{BatchSize: 2}) // flights during the refresh
			require.NoError(t, err)
			defer db.Close()
			l, err := db.Link("w", store.Content{BaseDN: "dc=t", Scope: "sub", Filter: "(objectClass=*)"})
			require.NoError(t, err)
			for i := range tc.kept {
				dn := fmt.Sprintf("cn=kept%d,dc=t", i)
				require.NoError(t, l.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: dn, Entry: ldap.NewEntry(dn, nil)}))
			}
			require.NoError(t, l.Save(nil)) // committed, with no cookie: the link reloads
			h := &knownCounted{Link: l}
			edit := func(c *ldapadapter.Config) { c.Cookies = h }
			if tc.cookie != "" {
				edit = withCookie(t, h, tc.cookie)
			}
			ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
			cfg := fsm.DefaultConfig()
			cfg.Mode, cfg.RefreshInterval = replink.RefreshOnly, time.Hour
			w := startWireWith(t, cfg, func(p *peer, id int64, _ []byte) {
				for i, u := range ids {
					p.write(syncEntry(id, fmt.Sprintf("cn=e%d,dc=t", i), u, 1, ""))
				}
				p.write(searchDone(id, "cookie-1", false))
			}, h, edit)
			tr := waitState(t, w.machine, replink.Polling, 10*time.Second)
			require.Equal(t, replink.RefreshDone, tr.Event, "%v", w.machine.History())
			require.Equal(t, tc.listed, h.calls.Load() > 0, "Known asked")
			got, err := l.Known(ctx)
			require.NoError(t, err)
			require.ElementsMatch(t, ids, got, "the copy holds what the reload named, and nothing else")
			n, err := l.Len()
			require.NoError(t, err)
			require.Equal(t, len(ids), n, "all of it committed")
			cookie, err := l.Load()
			require.NoError(t, err)
			require.Contains(t, string(cookie), "cookie-1", "the cookie committed with the data")
		})
	}
}
