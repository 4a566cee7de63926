package ldapadapter_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

// A refreshOnly refresh from a cookie that names one changed entry and
// ends with Sync Done refreshDeletes FALSE is, by RFC 4533 §3.3.1, a
// present phase: the rest of the copy is deleted. 389-ds ends every
// incremental refresh that way while naming only what changed, so from a
// provider whose root DSE says 389 the rest of the copy stays. Without a
// cookie the refresh names everything, and every provider's prunes.
func TestWireIncrementalRefreshOnlyByVendor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vendor string
		cookie bool
		held   int
	}{
		{"no vendor: RFC reading, prune", "", true, 1},
		{"OpenLDAP: RFC reading, prune", "OpenLDAP Foundation", true, 1},
		{"389-ds: changes only, keep", "389 Project", true, 3},
		{"389-ds without a cookie: reload, prune", "389 Project", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := seeded(t, 2)
				cfg := fsm.DefaultConfig()
				cfg.Mode = replink.RefreshOnly
				var edit []func(*ldapadapter.Config)
				if tc.cookie {
					edit = append(edit, withCookie(t, &ldapadapter.MemoryCookieStore{}, "cookie-0"))
				}
				w := startWirePeer(t, cfg, func(p *peer) { p.vendor = tc.vendor }, func(p *peer, id int64, _ []byte) {
					p.write(syncEntry(id, "cn=changed,dc=t", uuid.New(), 1, ""))
					p.write(searchDone(id, "cookie-1", false))
				}, store, edit...)
				tr := waitState(t, w.machine, replink.Polling, time.Second)
				require.Equal(t, replink.RefreshDone, tr.Event)
				require.Equal(t, tc.held, held(t, store))
			})
		})
	}
}

// A provider that does not send e-syncRefreshRequired when the search base
// is replaced under a persistent search (389-ds) reports the old base entry
// deleted, or the new one added; either makes the link drop its cookie and
// reload, so what left with the old base is pruned. The reload adopts the
// new base, and a later change to it is only a change.
func TestWireBaseReplacedUnderPersist(t *testing.T) {
	oldBase, newBase := uuid.New(), uuid.New()
	for _, tc := range []struct {
		name   string
		vendor string
		signal func(id int64) []byte
	}{
		{"389-ds: old base deleted", "389 Project", func(id int64) []byte { return syncEntry(id, "ou=retired,dc=t", oldBase, 3, "c-2") }},
		{"entryUUID: new base added", "", func(id int64) []byte { return syncEntry(id, "dc=t", newBase, 1, "c-2") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := seeded(t, 2)
				var mu sync.Mutex
				var cookies []string
				w := startWirePeer(t, fsm.DefaultConfig(), func(p *peer) { p.vendor, p.base = tc.vendor, oldBase }, func(p *peer, id int64, cookie []byte) {
					mu.Lock()
					cookies = append(cookies, string(cookie))
					n := len(cookies)
					mu.Unlock()
					if n == 1 {
						p.write(refreshDeleteDone(id, "c-1"))
						time.Sleep(time.Second)
						p.write(tc.signal(id))
						return
					}
					p.write(syncEntry(id, "dc=t", newBase, 1, ""))
					p.write(refreshDeleteDone(id, "c-3"))
					time.Sleep(time.Second)
					p.write(syncEntry(id, "dc=t", newBase, 2, "c-4")) // a change to the new base
				}, store, func(c *ldapadapter.Config) {
					binding := oldBase.String()
					if tc.vendor == "389 Project" {
						binding = nsUniqueID(oldBase)
					}
					c.Cookies = &ldapadapter.MemoryCookieStore{}
					require.NoError(t, c.Cookies.Save(ldapadapter.StoredCookieUnder(*c, binding, "c-0")))
				})
				time.Sleep(5 * time.Second)
				h := w.machine.History()
				var events []replink.Event
				for _, tr := range h {
					events = append(events, tr.Event)
					if tr.Event == replink.RefreshRequired {
						require.True(t, errors.Is(tr.Cause, ldapadapter.ErrBaseReplaced), "cause %v", tr.Cause)
					}
				}
				require.Equal(t, []replink.Event{replink.Start, replink.Connected, replink.RefreshDone, replink.RefreshRequired, replink.RefreshDone}, events)
				mu.Lock()
				require.Equal(t, []string{"c-0", ""}, cookies, "the reload sends no cookie")
				mu.Unlock()
				require.Equal(t, 1, held(t, store), "the copy is pruned to the new base")
			})
		})
	}
}

// nsUniqueID spells u as 389-ds spells an entry's nsUniqueId.
func nsUniqueID(u uuid.UUID) string {
	h := strings.ReplaceAll(u.String(), "-", "")
	return h[:8] + "-" + h[8:16] + "-" + h[16:24] + "-" + h[24:]
}

// A provider that stops sending in the middle of a refresh, while it
// still answers keepalives, would hold the link in Refreshing for ever
// (389-ds at its size limit). After RefreshStall of silence on the sync
// search the refresh fails and the link retries; the same silence in the
// persist stage is normal and ends nothing.
func TestWireRefreshStall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
		want    replink.State
	}{
		{"silent in the refresh: fails", false, replink.Failed},
		{"silent in the persist stage: stays", true, replink.Persisting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := startWirePeer(t, fsm.DefaultConfig(), nil, func(p *peer, id int64, _ []byte) {
					p.write(syncEntry(id, "cn=a,dc=t", uuid.New(), 1, ""))
					if tc.persist {
						p.write(refreshDeleteDone(id, "c-1"))
					}
				}, nil, func(c *ldapadapter.Config) { c.RefreshStall = 10 * time.Second })
				time.Sleep(9 * time.Second)
				require.Equal(t, map[bool]replink.State{true: replink.Persisting, false: replink.Refreshing}[tc.persist], w.machine.State())
				time.Sleep(2 * time.Second)
				h := w.machine.History()
				if tc.want == replink.Failed {
					i := slices.IndexFunc(h, func(tr fsm.Transition) bool { return tr.Event == replink.Exception })
					require.GreaterOrEqual(t, i, 0, "no exception: %v", h)
					require.Equal(t, replink.Failed, h[i].To)
					require.ErrorIs(t, h[i].Cause, ldapadapter.ErrRefreshStalled)
					return
				}
				last := h[len(h)-1]
				require.Equal(t, tc.want, last.To)
				require.Equal(t, replink.RefreshDone, last.Event)
			})
		})
	}
}

// durableCopy stands for a copy that outlives the process, such as a
// system the handler mirrors into.
type durableCopy struct{ *ldapadapter.MemoryStore }

// transactionalCookies records saves like savedCookies and claims to commit
// them with the changes, as store.Link does.
type transactionalCookies struct{ savedCookies }

func (*transactionalCookies) CommitsWithChanges() {}

// Before the first change past the stored cookie reaches the handler, the
// link marks the stored cookie ahead; the save of the cookie covering the
// change clears the mark. A store that commits cookies with the changes
// gets no mark. After a crash, a marked cookie is used with a provider
// that reports every deletion, and dropped for a reload with 389-ds, which
// folds an entry added and deleted since the cookie into nothing.
func TestWireCookieMarkedAheadOfTheCopy(t *testing.T) {
	cfg := ldapadapter.Config{URL: "ldap://x", BaseDN: "dc=t", Handler: ldapadapter.NewMemoryStore()}
	clean := func(c string) string { return string(ldapadapter.StoredCookie(cfg, c)) }
	ahead := func(c string) string { return string(ldapadapter.StoredCookieAhead(cfg, c)) }

	t.Run("mark and clear", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			cookies interface {
				ldapadapter.CookieStore
				list() []string
			}
			want []string
		}{
			{"cookie store", &savedCookies{}, []string{clean("c-1"), ahead("c-1"), clean("c-2")}},
			{"transactional store", &transactionalCookies{}, []string{clean("c-1"), clean("c-2")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					startWire(t, func(p *peer, id int64, _ []byte) {
						p.write(refreshDeleteDone(id, "c-1"))
						time.Sleep(2 * time.Second)
						p.write(syncEntry(id, "cn=a,dc=t", uuid.New(), 1, "c-2"))
					}, durableCopy{ldapadapter.NewMemoryStore()}, func(c *ldapadapter.Config) { c.Cookies = tc.cookies })
					time.Sleep(5 * time.Second)
					require.Equal(t, tc.want, tc.cookies.list())
				})
			})
		}
	})

	t.Run("restart from a marked cookie", func(t *testing.T) {
		for _, tc := range []struct {
			vendor string
			sent   string
		}{{"", "c-0"}, {"OpenLDAP Foundation", "c-0"}, {"389 Project", ""}} {
			t.Run("vendor "+tc.vendor, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					sent := make(chan string, 1)
					startWirePeer(t, fsm.DefaultConfig(), func(p *peer) { p.vendor = tc.vendor }, func(p *peer, id int64, cookie []byte) {
						sent <- string(cookie)
						p.write(refreshDeleteDone(id, "c-1"))
					}, nil, func(c *ldapadapter.Config) {
						c.Cookies = &ldapadapter.MemoryCookieStore{}
						require.NoError(t, c.Cookies.Save(ldapadapter.StoredCookieAhead(*c, "c-0")))
					})
					require.Equal(t, tc.sent, <-sent)
				})
			})
		}
	})
}
