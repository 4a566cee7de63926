package ldapadapter_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

// syncInfo is a Sync Info intermediate response whose choice is built by
// value (RFC 4533 2.5).
func syncInfo(id int64, value *ber.Packet) []byte {
	ir := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 25, nil, "")
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.4203.1.9.1.4", ""))
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, string(value.Bytes()), ""))
	return envelope(id, ir)
}

// phaseEnd is refreshDelete (tag 1) or refreshPresent (tag 2) with its
// refreshDone spelled out.
func phaseEnd(id int64, phase ber.Tag, cookie string, done bool) []byte {
	v := ber.Encode(ber.ClassContext, ber.TypeConstructed, phase, nil, "")
	v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, ""))
	v.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, done, ""))
	return syncInfo(id, v)
}

// idSet is a syncIdSet naming ids, deleted or present.
func idSet(id int64, cookie string, deletes bool, ids ...uuid.UUID) []byte {
	v := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "")
	v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, ""))
	v.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, deletes, ""))
	set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
	for _, u := range ids {
		set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(u[:]), ""))
	}
	v.AppendChild(set)
	return syncInfo(id, v)
}

// In the persist stage a Sync Info refreshPresent or refreshDelete, with
// refreshDone TRUE or FALSE, carries at most a cookie: only the end of a
// refresh's complete present phase licenses a prune.
func TestWirePersistStagePhaseMessagesKeepTheCopy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase ber.Tag
		done  bool
	}{
		{"refreshPresent, refreshDone TRUE", 2, true},
		{"refreshPresent, refreshDone FALSE", 2, false},
		{"refreshDelete, refreshDone TRUE", 1, true},
		{"refreshDelete, refreshDone FALSE", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := ldapadapter.NewMemoryStore()
				var syncID int64
				w := startWire(t, func(p *peer, id int64, c []byte) { syncID = id; refresh3(p, id, c) }, store)
				waitState(t, w.machine, replink.Persisting, time.Second)
				require.Equal(t, 3, held(t, store))

				w.peer.write(phaseEnd(syncID, tc.phase, "cookie-2", tc.done))
				w.peer.write(syncEntry(syncID, "cn=later,dc=t", uuid.New(), 1, "cookie-3"))
				require.Eventually(t, func() bool { return store.Applied() == 4 }, time.Second, time.Millisecond)
				require.Equal(t, replink.Persisting, w.machine.State())
				require.Equal(t, 4, held(t, store), "a persist-stage Sync Info pruned the copy")
			})
		})
	}
}

// A 389-ds whose root DSE the bind identity cannot read still shows its
// dialect in the session: its cookies, and nsUniqueId on its entries. An
// incremental refreshOnly refresh from such a provider names only what
// changed, so it prunes nothing; the same refresh from an unknown provider
// with an ordinary cookie is a present phase by RFC 4533.
func TestWireDialectFromTheSession(t *testing.T) {
	const cookie389 = "ds.example:389#cn=r,dc=t:dc=t:(objectClass=*)#12"
	for _, tc := range []struct {
		name   string
		stored string // the cookie the link starts from
		done   string // the Sync Done's cookie
		nsUID  bool   // the changed entry carries nsUniqueId
		held   int
	}{
		{"unknown provider, plain cookies: RFC reading, prune", "cookie-0", "cookie-1", false, 1},
		{"389-ds cookie stored", cookie389, "cookie-1", false, 3},
		{"389-ds cookie on Sync Done", "cookie-0", cookie389, false, 3},
		{"entry with nsUniqueId", "cookie-0", "cookie-1", true, 3},
		{"a cookie that only looks close", "a#b#c", "x:1#y#z", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := seeded(t, 2)
				cfg := fsm.DefaultConfig()
				cfg.Mode = replink.RefreshOnly
				w := startWirePeer(t, cfg, nil, func(p *peer, id int64, _ []byte) {
					u := uuid.New()
					if tc.nsUID {
						p.write(entryWithAttr(id, "cn=changed,dc=t", u, "nsUniqueId", nsUniqueID(u)))
					} else {
						p.write(syncEntry(id, "cn=changed,dc=t", u, 1, ""))
					}
					p.write(searchDone(id, tc.done, false))
				}, store, withCookie(t, &ldapadapter.MemoryCookieStore{}, tc.stored))
				tr := waitState(t, w.machine, replink.Polling, time.Second)
				require.Equal(t, replink.RefreshDone, tr.Event)
				require.Equal(t, tc.held, held(t, store))
			})
		})
	}
}

// entryWithAttr is an added entry carrying one attribute.
func entryWithAttr(id int64, dn string, u uuid.UUID, attr, value string) []byte {
	return plainEntry(id, dn, attr, value, ldapadapter.SyncStateControl(1, u, ""))
}

// A base DN configured with spaces after its commas names the same entry
// the provider spells without them: a new entry at the base's DN under a
// persistent search is still seen as the base replaced.
func TestWireBaseSpelledWithSpaces(t *testing.T) {
	for _, tc := range []struct{ config, sent string }{
		{"ou=p, dc=t", "ou=p,dc=t"},
		{"ou=p,dc=t", "OU=p, DC=t"},
		{"OU = p , dc=t", "ou=p,dc=t"},
	} {
		t.Run(tc.config+" / "+tc.sent, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				oldBase, newBase := uuid.New(), uuid.New()
				var syncID int64
				w := startWirePeer(t, fsm.DefaultConfig(), func(p *peer) { p.base = oldBase }, func(p *peer, id int64, _ []byte) {
					syncID = id
					p.write(refreshDeleteDone(id, "c-1"))
				}, nil, func(c *ldapadapter.Config) { c.BaseDN = tc.config })
				waitState(t, w.machine, replink.Persisting, time.Second)
				w.peer.write(syncEntry(syncID, tc.sent, newBase, 1, "c-2"))
				time.Sleep(time.Second)
				var causes []error
				for _, tr := range w.machine.History() {
					if tr.Event == replink.RefreshRequired {
						causes = append(causes, tr.Cause)
					}
				}
				require.Len(t, causes, 1, "the new base entry went unnoticed")
				require.ErrorIs(t, causes[0], ldapadapter.ErrBaseReplaced)
			})
		})
	}
}

// seededIDs is seeded with the UUIDs it holds.
func seededIDs(t *testing.T, n int) (*ldapadapter.MemoryStore, []uuid.UUID) {
	s := seeded(t, n)
	ids, err := s.Known(t.Context())
	require.NoError(t, err)
	return s, ids
}

// The deletion guard: a refresh that would delete more than its share of
// the copy, beyond its floor, applies none of its deletions, whether a
// present phase implies them or the provider names them; the link waits in
// Failed on deletions-held until an admin approves, and then applies them.
func TestWireDeletionGuard(t *testing.T) {
	for _, tc := range []struct {
		name   string
		copy   int
		guard  ldapadapter.DeletionGuard
		cookie bool                                      // an incremental refresh rather than a reload
		answer func(p *peer, id int64, copy []uuid.UUID) // sends the refresh
		held   int                                       // deletions held, or 0: applied
		after  int                                       // the copy once applied
	}{
		{"reload naming 10 of 300: held", 300, ldapadapter.DeletionGuard{}, false, func(p *peer, id int64, c []uuid.UUID) {
			for _, u := range c[:10] {
				p.write(syncEntry(id, "cn="+u.String()+",dc=t", u, 1, ""))
			}
			p.write(refreshDeleteDone(id, "c-1"))
		}, 290, 10},
		{"delete phase naming 150 of 300: held", 300, ldapadapter.DeletionGuard{}, true, func(p *peer, id int64, c []uuid.UUID) {
			p.write(idSet(id, "", true, c[:150]...))
			p.write(refreshDeleteDone(id, "c-1"))
		}, 150, 150},
		{"present phase keeping 150 of 300: held", 300, ldapadapter.DeletionGuard{}, true, func(p *peer, id int64, c []uuid.UUID) {
			p.write(idSet(id, "", false, c[:150]...))
			p.write(phaseEnd(id, 2, "c-1", true))
		}, 150, 150},
		{"50 of 300 is within a fifth", 300, ldapadapter.DeletionGuard{}, true, func(p *peer, id int64, c []uuid.UUID) {
			p.write(idSet(id, "", true, c[:50]...))
			p.write(refreshDeleteDone(id, "c-1"))
		}, 0, 250},
		{"a whole copy of 80 is under the floor", 80, ldapadapter.DeletionGuard{}, false, func(p *peer, id int64, _ []uuid.UUID) {
			p.write(refreshDeleteDone(id, "c-1"))
		}, 0, 0},
		{"floor and share lowered", 80, ldapadapter.DeletionGuard{Share: 0.5, Floor: 10}, false, func(p *peer, id int64, c []uuid.UUID) {
			p.write(syncEntry(id, "cn=one,dc=t", c[0], 1, ""))
			p.write(refreshDeleteDone(id, "c-1"))
		}, 79, 1},
		{"guard off", 300, ldapadapter.DeletionGuard{Share: -1}, false, func(p *peer, id int64, _ []uuid.UUID) {
			p.write(refreshDeleteDone(id, "c-1"))
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store, ids := seededIDs(t, tc.copy)
				edit := []func(*ldapadapter.Config){func(c *ldapadapter.Config) { c.DeletionGuard = tc.guard }}
				if tc.cookie {
					edit = append(edit, withCookie(t, &ldapadapter.MemoryCookieStore{}, "c-0"))
				}
				a, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "guarded", Machine: fsm.DefaultConfig(), LDAP: wireConfig(t, func(p *peer, id int64, _ []byte) {
					tc.answer(p, id, ids)
				}, store, edit...)}, fsm.WithLogger(discard))
				require.NoError(t, err)
				t.Cleanup(func() { a.Close() })
				require.NoError(t, a.Start(t.Context()))
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // virtual time
				defer cancel()
				if tc.held == 0 {
					_, err := a.WaitFor(ctx, replink.Persisting)
					require.NoError(t, err)
					require.Equal(t, tc.after, held(t, store))
					require.Nil(t, a.HeldDeletions())
					require.ErrorIs(t, a.ApproveDeletions(t.Context()), ldapadapter.ErrNothingHeld)
					return
				}
				_, err = a.WaitFor(ctx, replink.Failed)
				require.NoError(t, err)
				h := a.History()
				last := h[len(h)-1]
				require.Equal(t, replink.DeletionsHeld, last.Event)
				var he *ldapadapter.DeletionsHeldError
				require.ErrorAs(t, last.Cause, &he)
				require.Equal(t, tc.held, he.Deletions)
				require.Equal(t, tc.copy, he.Copy)
				require.Equal(t, he, a.HeldDeletions())
				require.Equal(t, tc.copy, held(t, store), "the guard let a deletion through")
				time.Sleep(time.Minute)
				require.Equal(t, replink.Failed, a.State(), "a held link retried on its own")

				require.NoError(t, a.ApproveDeletions(t.Context()))
				_, err = a.WaitFor(ctx, replink.Persisting)
				require.NoError(t, err)
				require.Equal(t, tc.after, held(t, store))
				require.Nil(t, a.HeldDeletions())
			})
		})
	}
}

// An approval covers the deletions that were held, not more: a provider
// that would delete more at the next refresh is held again.
func TestWireDeletionGuardApprovalIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, ids := seededIDs(t, 300)
		n := 0
		a, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "guarded", Machine: fsm.DefaultConfig(), LDAP: wireConfig(t, func(p *peer, id int64, _ []byte) {
			n++
			keep := 200 // 100 deletions, then 150
			if n > 1 {
				keep = 150
			}
			p.write(idSet(id, "", false, ids[:keep]...))
			p.write(phaseEnd(id, 2, "c-1", true))
		}, store, withCookie(t, &ldapadapter.MemoryCookieStore{}, "c-0"), func(c *ldapadapter.Config) {
			c.DeletionGuard = ldapadapter.DeletionGuard{Floor: 50}
		})}, fsm.WithLogger(discard))
		require.NoError(t, err)
		t.Cleanup(func() { a.Close() })
		require.NoError(t, a.Start(t.Context()))
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // virtual time
		defer cancel()
		_, err = a.WaitFor(ctx, replink.Failed)
		require.NoError(t, err)
		require.Equal(t, 100, a.HeldDeletions().Deletions)
		require.NoError(t, a.ApproveDeletions(t.Context()))
		time.Sleep(time.Second)
		_, err = a.WaitFor(ctx, replink.Failed)
		require.NoError(t, err)
		require.Equal(t, 150, a.HeldDeletions().Deletions)
		require.Equal(t, 300, held(t, store))
	})
}

// wireConfig is the adapter configuration startWirePeer uses, for tests
// that build a Link themselves.
func wireConfig(t *testing.T, onSync func(*peer, int64, []byte), h ldapadapter.Handler, edit ...func(*ldapadapter.Config)) ldapadapter.Config {
	p, dial := newPeer(t)
	p.onSync = onSync
	t.Cleanup(p.close)
	cfg := ldapadapter.Config{
		URL: "ldap://peer.invalid:389", BaseDN: "dc=t", BindDN: "cn=r,dc=t", Password: "pw", AllowCleartextPassword: true,
		Handler: h, DialContext: dial, Logger: discard,
	}
	for _, e := range edit {
		e(&cfg)
	}
	return cfg
}
