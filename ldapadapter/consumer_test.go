package ldapadapter_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

func linkConfig(name, url string, store ldapadapter.Handler, cookies ldapadapter.CookieStore) ldapadapter.LinkConfig {
	m := fsm.DefaultConfig()
	m.KeepaliveInterval, m.KeepaliveTimeout = time.Second, time.Second
	return ldapadapter.LinkConfig{
		Name:    name,
		Machine: m,
		LDAP: ldapadapter.Config{
			URL: url, BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.BaseDN, Handler: store, Cookies: cookies, Logger: discard,
		},
	}
}

// Case 2: one link is reconfigured, stopped and started at run time; the
// other never notices.
func TestConsumerManagesLinksIndependently(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) }) // registered first, runs last
	srv := slapdtest.Start(t)
	require.NoError(t, srv.Write(10))
	pa, pb := slapdtest.NewProxy(t, srv.Addr()), slapdtest.NewProxy(t, srv.Addr())
	sa, sb := ldapadapter.NewMemoryStore(), ldapadapter.NewMemoryStore()
	c := ldapadapter.NewConsumer(fsm.WithLogger(discard))
	defer c.Shutdown()
	a, err := c.Add(linkConfig("a", pa.URL(), sa, nil))
	require.NoError(t, err)
	b, err := c.Add(linkConfig("b", pb.URL(), sb, nil))
	require.NoError(t, err)
	_, err = c.Add(linkConfig("a", pa.URL(), sa, nil))
	require.ErrorIs(t, err, ldapadapter.ErrDuplicateLink)
	require.ErrorIs(t, c.Start(t.Context(), "zz"), ldapadapter.ErrUnknownLink)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.StartAll(ctx))
	for _, l := range c.Links() {
		_, err := l.WaitFor(ctx, replink.Persisting)
		require.NoError(t, err)
	}
	// The state turns Persisting a moment before the transition is in the
	// history: count b's transitions once it is there.
	require.Eventually(t, func() bool {
		h := b.History()
		return len(h) > 0 && h[len(h)-1].To == replink.Persisting
	}, 5*time.Second, time.Millisecond)
	bBefore := len(b.History())

	// Reconfigure a onto the other proxy, with another keepalive.
	cfg := linkConfig("a", pb.URL(), sa, nil)
	cfg.Machine.KeepaliveInterval = 2 * time.Second
	require.NoError(t, c.Reconfigure(ctx, cfg))
	h := a.History()
	require.Equal(t, replink.Reconfigure, h[len(h)-1].Event)
	_, err = a.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)

	require.NoError(t, c.Stop(ctx, "a"))
	require.NoError(t, srv.Write(5))
	require.NoError(t, c.Start(ctx, "a"))
	_, err = a.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)

	require.Equal(t, bBefore, len(b.History()), "link b must not have moved")
	require.Equal(t, replink.Persisting, b.State())
	for _, s := range []*ldapadapter.MemoryStore{sa, sb} {
		require.Eventually(t, func() bool {
			want, err := srv.Snapshot(ctx, slapdtest.BaseDN)
			return err == nil && realtarget.DiffTrees(want, s.Snapshot()) == nil
		}, 5*time.Second, 50*time.Millisecond)
	}
	require.ErrorIs(t, c.Reconfigure(ctx, ldapadapter.LinkConfig{Name: "a"}), ldapadapter.ErrInvalidConfig)
	require.NoError(t, c.Remove("b"))
	require.ErrorIs(t, c.Remove("b"), ldapadapter.ErrUnknownLink)
}

// Case 1: a clean shutdown commits the cookie with the copy; the next
// process resumes from it and receives only what changed, including deletes
// and renames.
func TestShutdownSavesCookieAndRestartResumes(t *testing.T) {
	srv := slapdtest.Start(t)
	require.NoError(t, srv.Write(30))
	path := filepath.Join(t.TempDir(), "replica.db")
	content := store.Content{BaseDN: slapdtest.BaseDN, Scope: "sub", Filter: "(objectClass=*)"}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// run is one process: it opens the store, syncs, and returns its link.
	run := func() (*store.DB, *store.Link, *ldapadapter.Link) {
		db, err := store.Open(path, nil)
		require.NoError(t, err)
		copy, err := db.Link("p", content)
		require.NoError(t, err)
		l, err := ldapadapter.NewLink(linkConfig("p", srv.URL(), copy, nil), fsm.WithLogger(discard))
		require.NoError(t, err)
		require.NoError(t, l.Start(ctx))
		_, err = l.WaitFor(ctx, replink.Persisting)
		require.NoError(t, err)
		return db, copy, l
	}
	db, copy, l := run()
	require.NoError(t, l.Close())
	saved, err := copy.Load()
	require.NoError(t, err)
	require.NotEmpty(t, saved, "shutdown must leave a cookie")
	first := copy.Committed()
	require.NoError(t, db.Close())

	require.NoError(t, srv.Write(6)) // adds, a modify, a rename
	require.NoError(t, srv.Delete(3))
	db, copy, l = run()
	defer db.Close()
	defer l.Close()
	snapshot := func() map[string]map[string][]string {
		out := map[string]map[string][]string{}
		require.NoError(t, db.Each("p", func(e *ldap.Entry) error { out[e.DN] = ldapadapter.EntryAttributes(e); return nil }))
		return out
	}
	require.Eventually(t, func() bool {
		want, err := srv.Snapshot(ctx, slapdtest.BaseDN)
		return err == nil && realtarget.DiffTrees(want, snapshot()) == nil
	}, 5*time.Second, 50*time.Millisecond)
	require.Less(t, copy.Committed(), int64(20), "resumed from the cookie: no full reload of %d entries", first)
}
