package ldapadapter_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// searchDone is a SearchResultDone with a Sync Done control (RFC 4533
// 2.4): how a provider ends a refreshOnly refresh, or the persist stage.
func searchDone(id int64, cookie string, refreshDeletes bool) []byte {
	v := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, ""))
	if refreshDeletes {
		v.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, ""))
	}
	ctl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "1.3.6.1.4.1.4203.1.9.1.3", ""))
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v.Bytes()), ""))
	return result(id, 5, 0, ctl)
}

// resultText is an LDAPResult with a diagnostic message.
func resultText(id int64, op ber.Tag, code int64, text string) []byte {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, op, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, text, ""))
	return envelope(id, r)
}

// seeded is a memory store that already holds n entries, as a copy kept
// across a restart would.
func seeded(t *testing.T, n int) *ldapadapter.MemoryStore {
	s := ldapadapter.NewMemoryStore()
	for i := range n {
		dn := "cn=kept" + string(rune('a'+i)) + ",dc=t"
		require.NoError(t, s.Apply(t.Context(), ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: dn, Entry: ldap.NewEntry(dn, nil)}))
	}
	return s
}

// held counts the entries a store holds, by UUID.
func held(t *testing.T, h ldapadapter.Handler) int {
	ids, err := h.Known(t.Context())
	require.NoError(t, err)
	return len(ids)
}

// withCookie starts the link from a stored cookie, so that its refresh is
// incremental rather than a reload.
func withCookie(t *testing.T, cookies ldapadapter.CookieStore, cookie string) func(*ldapadapter.Config) {
	return func(c *ldapadapter.Config) {
		c.Cookies = cookies
		require.NoError(t, cookies.Save(ldapadapter.StoredCookie(*c, cookie)))
	}
}

// RFC 4533 §3.4: a provider ends the persist stage with SearchResultDone and
// a Sync Done control whose refreshDeletes defaults to FALSE. That is the
// end of the session, not a present phase naming nothing: the copy stays.
func TestWirePersistStageSyncDoneKeepsTheCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := seeded(t, 2)
		cookies := &ldapadapter.MemoryCookieStore{}
		var syncID int64
		w := startWire(t, func(p *peer, id int64, c []byte) { syncID = id; refresh3Ending(refreshDeleteDone)(p, id, c) },
			store, withCookie(t, cookies, "cookie-0"))
		waitState(t, w.machine, replink.Persisting, time.Second)
		require.Len(t, store.Snapshot(), 5)

		w.peer.write(searchDone(syncID, "cookie-2", false))
		tr := waitState(t, w.machine, replink.Polling, 100*time.Millisecond)
		require.Equal(t, replink.ConnectionClosed, tr.Event)
		require.ErrorIs(t, tr.Cause, ldapadapter.ErrPersistEnded)
		require.Len(t, store.Snapshot(), 5, "a persist-stage Sync Done deleted the copy")
		stored, err := cookies.Load()
		require.NoError(t, err)
		require.Equal(t, ldapadapter.StoredCookie(ldapadapter.Config{URL: "ldap://x", BaseDN: "dc=t", Handler: store}, "cookie-2"), stored,
			"the Sync Done's cookie is kept")
	})
}

// A refresh that had a delete phase ends in no prune, even if its Sync Done
// leaves refreshDeletes at its default.
func TestWireRefreshOnlyDeletePhaseDoesNotPrune(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := seeded(t, 2)
		cfg := fsm.DefaultConfig()
		cfg.Mode = replink.RefreshOnly
		w := startWireWith(t, cfg, func(p *peer, id int64, _ []byte) {
			p.write(syncEntry(id, "cn=gone,dc=t", uuid.New(), 3, ""))
			p.write(searchDone(id, "cookie-1", false))
		}, store, withCookie(t, &ldapadapter.MemoryCookieStore{}, "cookie-0"))
		tr := waitState(t, w.machine, replink.Polling, time.Second)
		require.Equal(t, replink.RefreshDone, tr.Event)
		require.Equal(t, 2, held(t, store), "a delete phase licenses no prune")
	})
}

// slowHandler takes per for each change and ignores its context, as a
// handler stuck in a remote call would; with per zero it blocks until
// release is closed.
type slowHandler struct {
	*ldapadapter.MemoryStore
	per     time.Duration
	release chan struct{}
	mu      sync.Mutex
	starts  []time.Time
}

func (h *slowHandler) Apply(ctx context.Context, c ldapadapter.Change) error {
	h.mu.Lock()
	h.starts = append(h.starts, time.Now())
	h.mu.Unlock()
	if h.per > 0 {
		time.Sleep(h.per)
	} else {
		<-h.release
	}
	return h.MemoryStore.Apply(ctx, c)
}

func (h *slowHandler) startedAfter(t time.Time) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.starts {
		if s.After(t) {
			n++
		}
	}
	return n
}

// savedCookies records every save, in order.
type savedCookies struct {
	mu    sync.Mutex
	saves []string
	ldapadapter.MemoryCookieStore
}

func (s *savedCookies) Save(b []byte) error {
	s.mu.Lock()
	s.saves = append(s.saves, string(b))
	s.mu.Unlock()
	return s.MemoryCookieStore.Save(b)
}

func (s *savedCookies) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.saves)
}

// Stop is bounded by StopTimeout whatever the handler does, no change starts
// after Stop began, and nothing an abandoned handler does later moves the
// cookie.
func TestWireStopIsBoundedAndFinal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		per      time.Duration
		stopAt   time.Duration
		maxStop  time.Duration
		lastSave string
		ahead    bool // stored marked ahead of the copy
	}{
		// A cookie inside a refresh is never saved, since the refresh may
		// turn out to be a present phase: the stored one stays c0, marked
		// ahead of the changes applied since.
		{"handler takes 3s per change", 3 * time.Second, 7 * time.Second, 2 * time.Second, "c0", true},
		// The abandoned change may still land: the copy may be ahead of c0.
		{"handler never returns", 0, time.Second, 3 * time.Second, "c0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := &slowHandler{MemoryStore: ldapadapter.NewMemoryStore(), per: tc.per, release: make(chan struct{})}
				defer close(h.release)
				cookies := &savedCookies{}
				w := startWire(t, func(p *peer, id int64, _ []byte) {
					for i := 1; i <= 20; i++ {
						p.write(syncEntry(id, "cn=e,dc=t", uuid.New(), 1, "c"+string(rune('0'+i%10))))
					}
					p.write(refreshDeleteDone(id, "c-end"))
				}, h, withCookie(t, cookies, "c0"))
				time.Sleep(tc.stopAt)
				stopAt := time.Now()
				require.NoError(t, w.machine.Stop(t.Context()))
				took := time.Since(stopAt)
				require.LessOrEqual(t, took, tc.maxStop, "Stop took %v", took)
				require.Equal(t, replink.Stopped, w.machine.State())
				saves := len(cookies.list())

				time.Sleep(time.Minute) // whatever was abandoned has long finished
				require.Zero(t, h.startedAfter(stopAt), "a change started after Stop")
				got := cookies.list()
				require.Len(t, got, saves, "a cookie was saved after Stop returned")
				stored, _ := cookies.Load()
				cfg := ldapadapter.Config{URL: "ldap://x", BaseDN: "dc=t", Handler: h}
				want := ldapadapter.StoredCookie(cfg, tc.lastSave)
				if tc.ahead {
					want = ldapadapter.StoredCookieAhead(cfg, tc.lastSave)
				}
				require.Equal(t, string(want), string(stored), "the stored cookie must be the one of the last change applied")
			})
		})
	}
}

// A cookie belongs to the content it was issued for (RFC 4533 §3.1): after
// a reconfiguration to another filter, the link reloads without a cookie
// and prunes, and a reconfiguration that keeps the content keeps the cookie.
func TestWireCookieIsBoundToContent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, dial := newPeer(t)
		var mu sync.Mutex
		var sent []string
		p.onSync = func(p *peer, id int64, cookie []byte) {
			mu.Lock()
			sent = append(sent, string(cookie))
			mu.Unlock()
			refresh3Ending(refreshDeleteDone)(p, id, cookie)
		}
		store := ldapadapter.NewMemoryStore()
		cfg := ldapadapter.LinkConfig{Name: "l", Machine: fsm.DefaultConfig(), LDAP: ldapadapter.Config{
			URL: "ldap://peer.invalid:389", BaseDN: "dc=t", BindDN: "cn=r,dc=t", Password: "pw", AllowCleartextPassword: true,
			Handler: store, DialContext: dial, Logger: discard,
		}}
		l, err := ldapadapter.NewLink(cfg, fsm.WithLogger(discard))
		require.NoError(t, err)
		defer p.close()
		defer l.Close()
		require.NoError(t, l.Start(t.Context()))
		_, err = l.WaitFor(t.Context(), replink.Persisting)
		require.NoError(t, err)
		require.Equal(t, 3, held(t, store))

		same := cfg
		same.Machine.KeepaliveInterval = time.Minute
		same.LDAP.Filter = "(objectClass=*)" // the default, spelled out
		require.NoError(t, l.Reconfigure(t.Context(), same))
		_, err = l.WaitFor(t.Context(), replink.Persisting)
		require.NoError(t, err)
		mu.Lock()
		t.Log(sent)
		mu.Unlock()
		require.Equal(t, 6, held(t, store), "same content: the cookie was used, nothing pruned")

		other := same
		other.LDAP.Filter = "(cn=*)"
		require.NoError(t, l.Reconfigure(t.Context(), other))
		_, err = l.WaitFor(t.Context(), replink.Persisting)
		require.NoError(t, err)
		mu.Lock()
		require.Equal(t, []string{"", "cookie-1", ""}, sent)
		mu.Unlock()
		require.Equal(t, 3, held(t, store), "other content: reload without a cookie and prune")
	})
}

// LDAP 53 "consumer state is newer than provider" is a cause of its own;
// the link retries with backoff and the same cookie, and Link.Reload drops
// the cookie and reloads.
func TestWireProviderBehindCookie(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, dial := newPeer(t)
		var mu sync.Mutex
		var sent []string
		var at []time.Time
		p.onSync = func(p *peer, id int64, cookie []byte) {
			mu.Lock()
			sent, at = append(sent, string(cookie)), append(at, time.Now())
			mu.Unlock()
			if len(cookie) > 0 {
				p.write(resultText(id, 5, 53, "consumer state is newer than provider!"))
				return
			}
			refresh3(p, id, cookie)
		}
		cookies := &ldapadapter.MemoryCookieStore{}
		cfg := ldapadapter.LinkConfig{Name: "l", Machine: fsm.DefaultConfig(), LDAP: ldapadapter.Config{
			URL: "ldap://peer.invalid:389", BaseDN: "dc=t", BindDN: "cn=r,dc=t", Password: "pw", AllowCleartextPassword: true,
			Handler: seeded(t, 2), Cookies: cookies, DialContext: dial, Logger: discard,
		}}
		withCookie(t, cookies, "rid=000,csn=future")(&cfg.LDAP)
		l, err := ldapadapter.NewLink(cfg, fsm.WithLogger(discard))
		require.NoError(t, err)
		defer p.close()
		defer l.Close()
		require.NoError(t, l.Start(t.Context()))
		time.Sleep(10 * time.Second)
		h := l.History()
		require.Equal(t, replink.Exception, h[2].Event)
		require.ErrorIs(t, h[2].Cause, ldapadapter.ErrProviderBehind)
		mu.Lock()
		require.GreaterOrEqual(t, len(sent), 3)
		require.LessOrEqual(t, len(sent), 6, "retries must back off, not storm")
		for i := range sent {
			require.Equal(t, "rid=000,csn=future", sent[i], "the cookie is kept while retrying")
		}
		require.Greater(t, at[2].Sub(at[1]), at[1].Sub(at[0])/2)
		mu.Unlock()

		require.NoError(t, l.Reload(t.Context()))
		_, err = l.WaitFor(t.Context(), replink.Persisting)
		require.NoError(t, err)
		mu.Lock()
		require.Equal(t, "", sent[len(sent)-1], "reload sends no cookie")
		mu.Unlock()
		require.Len(t, cfg.LDAP.Handler.(*ldapadapter.MemoryStore).Snapshot(), 3, "the reload pruned what the provider does not have")
	})
}

// A HandlerFunc is told of deletions a present phase implies: the link
// remembers what it handed the function.
func TestWireHandlerFuncIsPruned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		copy := map[uuid.UUID]string{}
		f := ldapadapter.HandlerFunc(func(_ context.Context, c ldapadapter.Change) error {
			mu.Lock()
			defer mu.Unlock()
			if c.Op == ldapadapter.Delete {
				delete(copy, c.UUID)
			} else {
				copy[c.UUID] = c.DN
			}
			return nil
		})
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		syncs := 0
		w := startWire(t, func(p *peer, id int64, _ []byte) {
			syncs++
			if syncs == 1 { // first load: three entries
				for i, u := range ids {
					p.write(syncEntry(id, "cn=e"+string(rune('a'+i))+",dc=t", u, 1, ""))
				}
				p.write(refreshDeleteDone(id, "cookie-1"))
				return
			}
			// after a reconnect: a present phase that names two of them
			p.write(syncEntry(id, "", ids[0], 0, ""))
			p.write(syncEntry(id, "", ids[1], 0, ""))
			p.write(refreshPresentDone(id, "cookie-2"))
		}, f)
		waitState(t, w.machine, replink.Persisting, time.Second)
		w.peer.close()
		waitState(t, w.machine, replink.Polling, time.Second)
		waitState(t, w.machine, replink.Persisting, 10*time.Second)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, copy, 2)
		require.NotContains(t, copy, ids[2])
	})
}

// A change applied after the last cookie received is not covered by it:
// no save may claim it. Saved with the older cookie, it would stay in the
// copy for good if the provider then deleted it, since an entry added and
// deleted after a cookie is not mentioned when a session resumes from it.
// So Stop commits what the cookie covers and leaves the rest to be sent
// again.
func TestWireNoCookieClaimsUncoveredChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := store.Open(t.TempDir()+"/r.db", nil)
		require.NoError(t, err)
		defer db.Close()
		copy, err := db.Link("l", store.Content{BaseDN: "dc=t", Scope: "sub", Filter: "(objectClass=*)"})
		require.NoError(t, err)
		w := startWire(t, func(p *peer, id int64, _ []byte) {
			p.write(refreshDeleteDone(id, "c0"))
			p.write(syncEntry(id, "cn=covered,dc=t", uuid.New(), 1, "c1")) // c1 waits for its flush
			p.write(syncEntry(id, "cn=uncovered,dc=t", uuid.New(), 1, ""))
		}, copy)
		waitState(t, w.machine, replink.Persisting, time.Second)
		time.Sleep(5 * time.Second) // every flush timer has long fired
		require.NoError(t, w.machine.Stop(t.Context()))
		stored, err := copy.Load()
		require.NoError(t, err)
		require.True(t, strings.HasSuffix(string(stored), "\nc0"), "c1 does not cover the last change: stored %q", stored)
		var dns []string
		require.NoError(t, db.Each("l", func(e *ldap.Entry) error { dns = append(dns, e.DN); return nil }))
		require.Empty(t, dns, "nothing past the saved cookie is committed: both changes come again")
	})
}
