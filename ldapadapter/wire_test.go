package ldapadapter_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// refresh3 answers a sync search with three entries and the end of refresh.
func refresh3(p *peer, id int64, c []byte) { refresh3Ending(refreshPresentDone)(p, id, c) }

// refresh3Ending is refresh3 with another closing message.
func refresh3Ending(end func(id int64, cookie string) []byte) func(*peer, int64, []byte) {
	return func(p *peer, id int64, _ []byte) {
		for i := 0; i < 3; i++ {
			p.write(syncEntry(id, "cn=e"+string(rune('a'+i))+",dc=t", uuid.New(), 1, ""))
		}
		p.write(end(id, "cookie-1"))
	}
}

type wireCase struct {
	peer    *peer
	store   ldapadapter.Handler
	machine *fsm.Machine
}

// startWire connects a machine with keepalive 1s/1s to a scripted peer, in
// the synctest bubble of the calling test, and waits for Persisting.
func startWire(t *testing.T, onSync func(*peer, int64, []byte), h ldapadapter.Handler, edit ...func(*ldapadapter.Config)) *wireCase {
	cfg := fsm.DefaultConfig()
	cfg.KeepaliveInterval, cfg.KeepaliveTimeout = time.Second, time.Second
	return startWireWith(t, cfg, onSync, h, edit...)
}

// startWireWith is startWire with the machine configured by cfg.
func startWireWith(t *testing.T, cfg fsm.Config, onSync func(*peer, int64, []byte), h ldapadapter.Handler, edit ...func(*ldapadapter.Config)) *wireCase {
	return startWirePeer(t, cfg, nil, onSync, h, edit...)
}

// startWirePeer is startWireWith with the peer set up by setup first: its
// vendor and base entry, which the adapter reads at connect.
func startWirePeer(t *testing.T, cfg fsm.Config, setup func(*peer), onSync func(*peer, int64, []byte), h ldapadapter.Handler, edit ...func(*ldapadapter.Config)) *wireCase {
	p, dial := newPeer(t)
	p.onSync = onSync
	if setup != nil {
		setup(p)
	}
	if h == nil {
		h = ldapadapter.NewMemoryStore()
	}
	acfg := ldapadapter.Config{
		URL: "ldap://peer.invalid:389", BaseDN: "dc=t", BindDN: "cn=r,dc=t", Password: "pw", AllowCleartextPassword: true,
		Handler: h, DialContext: dial, Logger: discard,
	}
	for _, e := range edit {
		e(&acfg)
	}
	a, err := ldapadapter.New(acfg)
	require.NoError(t, err)
	m, err := fsm.New(cfg, a, fsm.WithLogger(discard))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close(); p.close() })
	require.NoError(t, m.Start(t.Context()))
	return &wireCase{peer: p, store: h, machine: m}
}

// waitState sleeps in virtual time until the machine is in want or d passed.
func waitState(t *testing.T, m *fsm.Machine, want replink.State, d time.Duration) fsm.Transition {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if m.State() == want {
			h := m.History()
			return h[len(h)-1]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("state %s after %v, want %s; history %v", m.State(), d, want, m.History())
	return fsm.Transition{}
}

func TestWireHostileProvider(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame func(id int64) []byte
		want  replink.State
		event replink.Event
		cause error
	}{
		{"notice of disconnection", func(int64) []byte { return noticeFrame() }, replink.Polling, replink.DisconnectNotice, ldapadapter.ErrNotice},
		{"enormous length prefix", func(int64) []byte { return []byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x01} }, replink.Failed, replink.Exception, ldapadapter.ErrProtocol},
		{"not a SEQUENCE", func(int64) []byte { return []byte{0x04, 0x02, 'h', 'i'} }, replink.Failed, replink.Exception, ldapadapter.ErrProtocol},
		{"indefinite length", func(int64) []byte { return []byte{0x30, 0x80, 0x00, 0x00} }, replink.Failed, replink.Exception, ldapadapter.ErrProtocol},
		{"truncated BER inside", func(int64) []byte { return []byte{0x30, 0x03, 0x02, 0x05, 0x01} }, replink.Failed, replink.Exception, ldapadapter.ErrProtocol},
		{"unsolicited message ID", func(int64) []byte { return syncEntry(9999, "cn=x,dc=t", uuid.New(), 1, "") }, replink.Failed, replink.Exception, ldapadapter.ErrProtocol},
		{"entry without sync state", func(id int64) []byte { return result(id, 4, 0) }, replink.Failed, replink.Exception, nil},
		{"FIN", nil, replink.Polling, replink.ConnectionClosed, ldapadapter.ErrClosedByProvider},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var syncID int64
				w := startWire(t, func(p *peer, id int64, c []byte) { syncID = id; refresh3(p, id, c) }, nil)
				waitState(t, w.machine, replink.Persisting, time.Second)
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				if tc.frame == nil {
					w.peer.close()
				} else {
					w.peer.write(tc.frame(syncID))
				}
				tr := waitState(t, w.machine, tc.want, 100*time.Millisecond)
				require.Equal(t, tc.event, tr.Event, "cause: %v", tr.Cause)
				if tc.cause != nil {
					require.ErrorIs(t, tr.Cause, tc.cause)
				}
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "a hostile frame must not buy memory")
			})
		})
	}
}

func TestWireGarbageAfterBind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, dial := newPeer(t)
		a, err := ldapadapter.New(ldapadapter.Config{
			URL: "ldap://peer.invalid", BaseDN: "dc=t", Handler: ldapadapter.NewMemoryStore(),
			DialContext: func(ctx context.Context, n, addr string) (net_Conn, error) {
				c, err := dial(ctx, n, addr)
				go func() { time.Sleep(time.Millisecond); p.write([]byte("garbage, not BER")) }()
				return c, err
			}, Logger: discard, BindDN: "cn=r,dc=t", Password: "pw", AllowCleartextPassword: true,
		})
		require.NoError(t, err)
		p.mu.Lock()
		p.probes = false
		p.mu.Unlock()
		m, err := fsm.New(fsm.DefaultConfig(), a, fsm.WithLogger(discard))
		require.NoError(t, err)
		defer m.Close()
		defer p.close()
		require.NoError(t, m.Start(t.Context()))
		tr := waitState(t, m, replink.Failed, time.Second)
		require.Equal(t, replink.Exception, tr.Event)
		require.ErrorIs(t, tr.Cause, ldapadapter.ErrProtocol)
	})
}

func TestWireKeepalive(t *testing.T) {
	t.Run("answered probes keep a quiet link", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := startWire(t, refresh3, nil)
			waitState(t, w.machine, replink.Persisting, time.Second)
			time.Sleep(time.Minute)
			require.Equal(t, replink.Persisting, w.machine.State())
			require.Len(t, w.machine.History(), 3)
		})
	})
	t.Run("hung provider is detected within interval + timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := startWire(t, refresh3, nil)
			last := waitState(t, w.machine, replink.Persisting, time.Second).Time
			w.peer.setProbes(false)
			tr := waitState(t, w.machine, replink.Polling, 3*time.Second)
			require.Equal(t, replink.KeepaliveMiss, tr.Event)
			require.ErrorIs(t, tr.Cause, fsm.ErrKeepaliveMiss)
			require.LessOrEqual(t, tr.Time.Sub(last), 2*time.Second+10*time.Millisecond)
		})
	})
}

// slowStore takes ten virtual seconds per change: far longer than the
// keepalive. The provider keeps answering probes; the link must stay up.
type slowStore struct{ *ldapadapter.MemoryStore }

func (s slowStore) Apply(ctx context.Context, c ldapadapter.Change) error {
	time.Sleep(10 * time.Second)
	return s.MemoryStore.Apply(ctx, c)
}

// Two ways a slow consumer must not look like a dead provider: with room in
// the queue, the tap keeps reading and the probe answers arrive; with a tiny
// queue the tap stops reading, and LastRead reports the backlog as life.
func TestWireSlowHandlerIsNotADeadProvider(t *testing.T) {
	for name, queue := range map[string]int{"roomy queue": 0, "full queue": 256} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := slowStore{ldapadapter.NewMemoryStore()}
				const n = 200
				w := startWire(t, func(p *peer, id int64, _ []byte) {
					for i := 0; i < n; i++ {
						p.write(syncEntry(id, "cn=e,dc=t", uuid.New(), 1, ""))
					}
					p.write(refreshPresentDone(id, "c"))
				}, store, func(c *ldapadapter.Config) { c.QueueBytes = queue })
				for deadline := time.Now().Add(n * 11 * time.Second); w.machine.State() != replink.Persisting; {
					for _, h := range w.machine.History() {
						require.NotEqual(t, replink.KeepaliveMiss, h.Event, "a slow handler was taken for a dead provider after %d changes", store.Applied())
					}
					require.True(t, time.Now().Before(deadline), "refresh never finished")
					time.Sleep(time.Second)
				}
				require.Equal(t, n, store.Applied())
			})
		})
	}
}

func TestWireRefreshRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cookies [][]byte
		w := startWire(t, func(p *peer, id int64, cookie []byte) {
			cookies = append(cookies, cookie)
			if len(cookies) == 1 {
				p.write(result(id, 5, 4096)) // e-syncRefreshRequired
				return
			}
			refresh3(p, id, cookie)
		}, nil)
		tr := waitState(t, w.machine, replink.Persisting, time.Second)
		require.Equal(t, replink.RefreshDone, tr.Event)
		h := w.machine.History()
		require.Equal(t, replink.RefreshRequired, h[2].Event)
		require.Equal(t, replink.Refreshing, h[2].To)
		require.Len(t, cookies, 2)
		require.Empty(t, cookies[1], "refresh required drops the cookie")
	})
}

// TestWireReloadPrunes: a refresh without a cookie names everything the
// provider has, so the copy loses what it was not told about, whichever phase
// the provider says it ended with. With a cookie, a delete phase is
// incremental and the rest of the copy stays.
func TestWireReloadPrunes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cookie string
		end    func(int64, string) []byte
		want   int
	}{
		{"no cookie, present phase", "", refreshPresentDone, 3},
		{"no cookie, delete phase (slapd)", "", refreshDeleteDone, 3},
		{"cookie, delete phase", "cookie-0", refreshDeleteDone, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := ldapadapter.NewMemoryStore()
				for _, dn := range []string{"cn=stale1,dc=t", "cn=stale2,dc=t"} {
					require.NoError(t, store.Apply(t.Context(), ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: dn, Entry: ldap.NewEntry(dn, nil)}))
				}
				cookies := &ldapadapter.MemoryCookieStore{}
				w := startWire(t, refresh3Ending(tc.end), store, func(c *ldapadapter.Config) {
					c.Cookies = cookies
					if tc.cookie != "" {
						require.NoError(t, cookies.Save(ldapadapter.StoredCookie(*c, tc.cookie)))
					}
				})
				waitState(t, w.machine, replink.Persisting, time.Second)
				require.Len(t, store.Snapshot(), tc.want)
			})
		})
	}
}

type failStore struct{ *ldapadapter.MemoryStore }

func (failStore) Apply(context.Context, ldapadapter.Change) error { return errors.New("disk full") }

func TestWireHandlerErrorIsAnException(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWire(t, refresh3, failStore{ldapadapter.NewMemoryStore()})
		tr := waitState(t, w.machine, replink.Failed, time.Second)
		require.Equal(t, replink.Exception, tr.Event)
		require.ErrorIs(t, tr.Cause, ldapadapter.ErrHandler)
		var he *ldapadapter.HandlerError
		require.ErrorAs(t, tr.Cause, &he)
		require.Equal(t, ldapadapter.Upsert, he.Change.Op)
	})
}

func TestWireRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		op     int // 0 bind, 3 base check
		code   int64
		cookie string // stored before the start: the link has followed its base
	}{
		{"invalid credentials", 0, 49, ""},
		{"no such base", 3, 32, ""},
		{"invalid credentials, base followed before", 0, 49, "rid=000,csn=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := startRefusing(t, tc.op, tc.code, tc.cookie)
				tr := waitState(t, m, replink.Failed, time.Second)
				require.Equal(t, replink.ConnectRefused, tr.Event)
				require.ErrorIs(t, tr.Cause, ldapadapter.ErrRefused)
				var re *ldapadapter.ResultError
				require.ErrorAs(t, tr.Cause, &re)
				require.Equal(t, tc.code, re.Code)
				time.Sleep(time.Hour)
				require.Equal(t, replink.Failed, m.State(), "a refusal is never retried on its own")
			})
		})
	}
}

// A base that vanishes under a link that has followed it (a base replaced
// by a delete and an add, a provider being restored) is a moment, not a
// configuration error: the link polls with backoff until it is back,
// where a link that never saw its base waits for an admin. Found by
// TestSoak: the daemon's reconnect fell between the delete and the add of
// a replaced base and stayed Failed for good.
func TestWireBaseGoneIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startRefusing(t, 3, 32, "rid=000,csn=1")
		tr := waitState(t, m, replink.Polling, time.Second)
		require.Equal(t, replink.ConnectFailed, tr.Event)
		require.ErrorIs(t, tr.Cause, ldapadapter.ErrBaseGone)
		require.NotErrorIs(t, tr.Cause, ldapadapter.ErrRefused)
		var re *ldapadapter.ResultError
		require.ErrorAs(t, tr.Cause, &re)
		require.EqualValues(t, 32, re.Code)
		retried := 0
		for _, h := range m.History() {
			if h.Event == replink.RetryTimer {
				retried++
			}
		}
		time.Sleep(time.Minute)
		for _, h := range m.History() {
			if h.Event == replink.RetryTimer {
				retried--
			}
		}
		require.Negative(t, retried, "polled again within a minute")
		require.NotEqual(t, replink.Failed, m.State())
	})
}

// startRefusing starts a link whose provider answers the operation op
// with code; a non-empty cookie is stored first.
func startRefusing(t *testing.T, op int, code int64, cookie string) *fsm.Machine {
	cfg := ldapadapter.Config{
		URL: "ldap://peer.invalid", BaseDN: "dc=t", BindDN: "cn=r,dc=t", Password: "pw", AllowCleartextPassword: true, Handler: ldapadapter.NewMemoryStore(), Logger: discard,
		DialContext: refusingPeer(op, code),
	}
	if cookie != "" {
		withCookie(t, &ldapadapter.MemoryCookieStore{}, cookie)(&cfg)
	}
	a, err := ldapadapter.New(cfg)
	require.NoError(t, err)
	m, err := fsm.New(fsm.DefaultConfig(), a, fsm.WithLogger(discard))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, m.Start(t.Context()))
	return m
}
