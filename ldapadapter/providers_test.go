package ldapadapter_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/dstest"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// eachProvider runs f against each real provider, side by side.
func eachProvider(t *testing.T, f func(t *testing.T, kind realtarget.Kind, srv realtarget.Provider)) {
	if testing.Short() {
		t.Skip("real providers: not in -short")
	}
	for _, kind := range []realtarget.Kind{realtarget.Slapd, realtarget.DS389} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			realtarget.Require(t, kind)
			f(t, kind, realtarget.Start(t, kind, nil))
		})
	}
}

// countingStore counts the changes it is handed.
type countingStore struct {
	*ldapadapter.MemoryStore
	n atomic.Int64
}

func (s *countingStore) Apply(ctx context.Context, c ldapadapter.Change) error {
	s.n.Add(1)
	return s.MemoryStore.Apply(ctx, c)
}

// What each provider resends when a consumer comes back with its cookie
// after the provider restarted, cleanly or not: the figures docs/providers.md
// gives. Whatever the amount, the copy must equal the provider afterwards.
func TestRestartResendsAgainstProviders(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind realtarget.Kind, srv realtarget.Provider) {
		require.NoError(t, srv.Write(30))
		store := &countingStore{MemoryStore: ldapadapter.NewMemoryStore()}
		cfg := linkConfig("p", srv.URL(), store, &ldapadapter.MemoryCookieStore{})
		cfg.LDAP.BaseDN = slapdtest.PeopleDN
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		l := startLink(t, ctx, cfg)
		held := len(store.Snapshot())
		for _, f := range []struct {
			name string
			end  func()
		}{{"SIGTERM", srv.Stop}, {"SIGKILL", srv.Kill}} {
			before := store.n.Load()
			f.end()
			_, err := l.WaitFor(ctx, replink.Polling)
			require.NoError(t, err)
			srv.Launch()
			// Written before the link is back: slapd restarted after a
			// crash may refuse the cookie (53, provider behind) until
			// its next write moves its contextCSN.
			require.NoError(t, srv.Write(3))
			_, err = l.WaitFor(ctx, replink.Persisting)
			require.NoError(t, err)
			require.Eventually(t, func() bool {
				want, err := srv.Snapshot(ctx, slapdtest.PeopleDN)
				return err == nil && realtarget.DiffTrees(want, store.Snapshot()) == nil
			}, 10*time.Second, 50*time.Millisecond)
			// Three writes are one add, one modify, one rename at most:
			// anything beyond them was resent.
			t.Logf("%s after %s and restart: %d changes for 3 writes, copy of %d entries", kind, f.name, store.n.Load()-before, held)
		}
	})
}

// RFC 4533 lets a provider choose which attributes a sync search returns
// only by the request's attribute list, as for a plain search. Asked for
// "*" and "aci", 389-ds's Content Sync returns the aci values a plain
// search by the Directory Manager returns, in the refresh and in the
// persist stage (measured on 389-ds 2.3.1); neither returns aci for "*"
// alone, since 389-ds makes it operational.
func TestACIAgainst389ds(t *testing.T) {
	if testing.Short() {
		t.Skip("real providers: not in -short")
	}
	srv := dstest.Start(t)
	aci := `(targetattr="mail")(version 3.0; acl "self mail"; allow (write) userdn="ldap:///self";)`
	add := func(uid string) {
		c, err := srv.Admin()
		require.NoError(t, err)
		defer c.Close()
		r := ldap.NewAddRequest("uid="+uid+","+slapdtest.PeopleDN, nil)
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		for _, a := range []string{"uid", "cn", "sn"} {
			r.Attribute(a, []string{uid})
		}
		r.Attribute("aci", []string{aci})
		require.NoError(t, c.Add(r))
	}
	add("before") // arrives in the refresh
	managerView := func() map[string]map[string][]string {
		c, err := srv.Admin()
		require.NoError(t, err)
		defer c.Close()
		res, err := c.Search(ldap.NewSearchRequest(slapdtest.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"*", "aci"}, nil))
		require.NoError(t, err)
		return entriesOf(res.Entries)
	}
	store := ldapadapter.NewMemoryStore()
	cfg := linkConfig("p", srv.URL(), store, nil)
	cfg.LDAP.BaseDN, cfg.LDAP.Attributes = slapdtest.PeopleDN, []string{"*", "aci"}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	startLink(t, ctx, cfg)
	add("during") // arrives in the persist stage
	require.Eventually(t, func() bool { return len(store.Snapshot()) == 3 }, 10*time.Second, 50*time.Millisecond)
	want := managerView()
	require.Equal(t, []string{aci}, want["uid=during,"+slapdtest.PeopleDN]["aci"], "the Directory Manager reads the aci")
	require.NoError(t, realtarget.DiffTrees(want, store.Snapshot()))
}

// entriesOf is DN → attribute → values, as Snapshot gives them.
func entriesOf(es []*ldap.Entry) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, e := range es {
		m := map[string][]string{}
		for _, a := range e.Attributes {
			m[a.Name] = slices.Sorted(slices.Values(a.Values))
		}
		out[e.DN] = m
	}
	return out
}

// 389-ds stops a search by anyone but the Directory Manager after 2,000
// entries, sync searches included: a refreshOnly search ends with result 4,
// a refreshAndPersist one just goes silent, connection alive. The link
// fails after RefreshStall and says how to lift the limit; once the
// replication identity has none, the next attempt brings everything.
func TestSizeLimitAgainst389ds(t *testing.T) {
	if testing.Short() {
		t.Skip("real providers: not in -short")
	}
	srv := dstest.Start(t)
	c, err := srv.Admin()
	require.NoError(t, err)
	defer c.Close()
	for i := range 2010 {
		r := ldap.NewAddRequest(fmt.Sprintf("uid=n%d,%s", i, slapdtest.PeopleDN), nil)
		r.Attribute("objectClass", []string{"inetOrgPerson"})
		r.Attribute("cn", []string{"n"})
		r.Attribute("sn", []string{"n"})
		require.NoError(t, c.Add(r))
	}
	limit := func(v []string) {
		m := ldap.NewModifyRequest(slapdtest.ReplicatorDN, nil)
		for _, a := range []string{"nsSizeLimit", "nsTimeLimit", "nsLookThroughLimit"} {
			m.Replace(a, v)
		}
		require.NoError(t, c.Modify(m))
	}
	limit(nil) // back to the server's defaults

	store := ldapadapter.NewMemoryStore()
	cfg := linkConfig("p", srv.URL(), store, nil)
	cfg.LDAP.BaseDN, cfg.LDAP.RefreshStall = slapdtest.PeopleDN, 3*time.Second
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	failed := make(chan error, 1)
	l := newLink(t, cfg, func(tr fsm.Transition) {
		if tr.Event == replink.Exception {
			select {
			case failed <- tr.Cause:
			default:
			}
		}
	})
	require.NoError(t, l.Start(ctx))
	select {
	case err := <-failed:
		require.ErrorIs(t, err, ldapadapter.ErrRefreshStalled)
		require.ErrorContains(t, err, "nsSizeLimit")
	case <-ctx.Done():
		t.Fatalf("no exception from the size limit: %v; %d held", l.History(), len(store.Snapshot()))
	}
	limit([]string{"-1"})
	_, err = l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Len(t, store.Snapshot(), 2011)
}

// crashable loses every save once its process has "crashed".
type crashable struct {
	ldapadapter.FileCookieStore
	dead atomic.Bool
}

func (c *crashable) Save(b []byte) error {
	if c.dead.Load() {
		return nil
	}
	return c.FileCookieStore.Save(b)
}

// A consumer killed before it saved the cookie covering the changes it had
// applied comes back with a copy ahead of its cookie. Entries added and
// deleted meanwhile must not survive: slapd reports their deletion, 389-ds
// folds them into nothing, and the link reloads from 389-ds because the
// stored cookie was marked ahead.
func TestCrashWithCopyAheadAgainstProviders(t *testing.T) {
	eachProvider(t, func(t *testing.T, kind realtarget.Kind, srv realtarget.Provider) {
		require.NoError(t, srv.Write(5))
		copy := durableCopy{ldapadapter.NewMemoryStore()}
		path := filepath.Join(t.TempDir(), "cookie")
		cfg := linkConfig("p", srv.URL(), copy, nil)
		cfg.LDAP.BaseDN = slapdtest.PeopleDN
		cfg.LDAP.CookieFlushInterval = time.Hour // only the end of the refresh saves
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()

		first := &crashable{FileCookieStore: ldapadapter.FileCookieStore{Path: path}}
		cfg.LDAP.Cookies = first
		l := startLink(t, ctx, cfg)
		c, err := srv.Admin()
		require.NoError(t, err)
		defer c.Close()
		var added []string
		for i := range 4 {
			dn := fmt.Sprintf("uid=brief%d,%s", i, slapdtest.PeopleDN)
			r := ldap.NewAddRequest(dn, nil)
			r.Attribute("objectClass", []string{"inetOrgPerson"})
			r.Attribute("cn", []string{"b"})
			r.Attribute("sn", []string{"b"})
			require.NoError(t, c.Add(r))
			added = append(added, dn)
		}
		require.Eventually(t, func() bool { return copy.Snapshot()[added[3]] != nil }, 10*time.Second, 20*time.Millisecond)
		first.dead.Store(true) // killed: nothing more is saved
		require.NoError(t, l.Close())
		for _, dn := range added {
			require.NoError(t, c.Del(ldap.NewDelRequest(dn, nil)))
		}
		require.NoError(t, srv.Write(2))

		cfg.LDAP.Cookies = &ldapadapter.FileCookieStore{Path: path}
		startLink(t, ctx, cfg)
		var diff error
		require.Eventually(t, func() bool {
			want, err := srv.Snapshot(ctx, slapdtest.PeopleDN)
			diff = err
			if err == nil {
				diff = realtarget.DiffTrees(want, copy.Snapshot())
			}
			return diff == nil
		}, 10*time.Second, 50*time.Millisecond, "%v", func() error { return diff })
	})
}
