package ldapadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// deltaRig is a provider with an accesslog and a delta-syncrepl link of
// ou=people into a real store.
type deltaRig struct {
	t     *testing.T
	srv   *slapdtest.Server
	admin *ldap.Conn
	db    *store.DB
	copy  *store.Link
	cfg   ldapadapter.LinkConfig
	path  string
}

// restart is the consumer's process starting again on its file: what the
// last one did not commit is gone.
func (r *deltaRig) restart() {
	require.NoError(r.t, r.db.Close())
	db, err := store.Open(r.path, nil)
	require.NoError(r.t, err)
	r.db = db
	r.open()
}

func newDeltaRig(t *testing.T, purge string) *deltaRig {
	t.Helper()
	if testing.Short() {
		t.Skip("real slapd: not in -short")
	}
	srv := slapdtest.Start(t, slapdtest.WithAccesslog(purge), slapdtest.WithPeople(5))
	admin, err := srv.Admin()
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	path := t.TempDir() + "/r.db"
	db, err := store.Open(path, nil)
	require.NoError(t, err)
	r := &deltaRig{t: t, srv: srv, admin: admin, db: db, path: path}
	t.Cleanup(func() { r.db.Close() })
	r.open()
	for _, dn := range []string{"ou=elsewhere," + slapdtest.BaseDN, "ou=sub," + slapdtest.PeopleDN} {
		a := ldap.NewAddRequest(dn, nil)
		a.Attribute("objectClass", []string{"organizationalUnit"})
		a.Attribute("ou", []string{ldap.EscapeDN(dn[3 : len(dn)-len(slapdtest.BaseDN)-1])})
		require.NoError(t, admin.Add(a))
	}
	return r
}

// open (re)opens the link's copy in the store and its configuration.
func (r *deltaRig) open() {
	copy, err := r.db.Link("delta", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(r.t, err)
	r.copy = copy
	r.cfg = linkConfig("delta", r.srv.URL(), copy, nil)
	r.cfg.LDAP.BaseDN = slapdtest.PeopleDN
	r.cfg.LDAP.LogBase = slapdtest.LogDN
	if testing.Verbose() {
		r.cfg.LDAP.Logger = slog.New(slog.NewTextHandler(testWriter{r.t}, nil))
	}
}

func (r *deltaRig) got() map[string]map[string][]string {
	got := map[string]map[string][]string{}
	require.NoError(r.t, r.db.Each("delta", func(e *ldap.Entry) error { got[e.DN] = ldapadapter.EntryAttributes(e); return nil }))
	return got
}

// inSync waits until the copy equals the provider's ou=people.
func (r *deltaRig) inSync(ctx context.Context) {
	r.t.Helper()
	var diff error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		want, err := r.srv.Snapshot(ctx, slapdtest.PeopleDN)
		diff = err
		if err == nil {
			diff = realtarget.DiffTrees(want, r.got())
		}
		if diff == nil {
			return
		}
	}
	r.t.Fatalf("the copy differs from the provider: %v", diff)
}

func (r *deltaRig) add(dn string, attrs map[string][]string) {
	r.t.Helper()
	a := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		a.Attribute(k, v)
	}
	require.NoError(r.t, r.admin.Add(a))
}

func (r *deltaRig) modify(dn string, f func(m *ldap.ModifyRequest)) {
	r.t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	require.NoError(r.t, r.admin.Modify(m))
}

func (r *deltaRig) rename(dn, rdn string, deleteOld bool, sup string) {
	r.t.Helper()
	require.NoError(r.t, r.admin.ModifyDN(ldap.NewModifyDNRequest(dn, rdn, deleteOld, sup)))
}

func person(uid string, extra map[string][]string) map[string][]string {
	m := map[string][]string{"objectClass": {"inetOrgPerson"}, "cn": {"C " + uid}, "sn": {"S"}, "uid": {uid}}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// binaryValue holds every byte value, ':' and newlines included.
func binaryValue(seed byte) []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i) ^ seed
	}
	return b
}

// A delta link follows the log across every kind of write: add, modify
// (add, delete, replace, increment of values, a binary value), rename with
// and without deleteoldrdn, a move under a new superior, a move out of the
// base, a delete. The copy ends equal to the provider, without a fallback,
// and the binary value survives byte for byte.
func TestDeltaFollowsEveryKindOfWrite(t *testing.T) {
	r := newDeltaRig(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := startLink(t, ctx, r.cfg)
	r.inSync(ctx)
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())

	p := slapdtest.PeopleDN
	r.add("uid=d1,"+p, person("d1", map[string][]string{
		"objectClass": {"inetOrgPerson", "posixAccount"}, "uidNumber": {"1000"}, "gidNumber": {"100"},
		"homeDirectory": {"/home/d1"}, "description": {"first"}, "jpegPhoto": {string(binaryValue(0))},
	}))
	r.add("uid=d2,"+p, person("d2", nil))
	r.add("uid=d3,"+p, person("d3", nil))
	r.modify("uid=d1,"+p, func(m *ldap.ModifyRequest) {
		m.Add("description", []string{"second", "third"})
		m.Delete("description", []string{"first"})
		m.Replace("mail", []string{"d1@example.com", "one@example.com"})
		m.Increment("uidNumber", "5")
	})
	r.modify("uid=d1,"+p, func(m *ldap.ModifyRequest) {
		m.Replace("jpegPhoto", []string{string(binaryValue(0x5a))})
		m.Delete("mail", nil)
	})
	r.rename("uid=d1,"+p, "uid=d1b", true, "")
	r.rename("uid=d1b,"+p, "cn=D One", false, "")
	r.rename("cn=D One,"+p, "cn=D One", false, "ou=sub,"+p)
	r.rename("uid=d2,"+p, "uid=d2", false, "ou=elsewhere,"+slapdtest.BaseDN)
	require.NoError(t, r.admin.Del(ldap.NewDelRequest("uid=d3,"+p, nil)))
	require.NoError(t, r.srv.Write(3))
	r.inSync(ctx)

	var photo []byte
	require.NoError(t, r.db.Each("delta", func(e *ldap.Entry) error {
		if e.DN == "cn=D One,ou=sub,"+p {
			photo = e.GetRawAttributeValue("jpegPhoto")
		}
		return nil
	}))
	require.True(t, bytes.Equal(binaryValue(0x5a), photo), "binary value changed on its way")
	require.Empty(t, l.Fallbacks())
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())
	require.Positive(t, l.ReceivedBytes())
	require.Equal(t, replink.Persisting, l.State())
	fmt.Fprintln(testWriter{t}, "received", l.ReceivedBytes(), "bytes")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// syncThenStop runs a link until the copy is in sync, and stops it.
func (r *deltaRig) syncThenStop(ctx context.Context) {
	r.t.Helper()
	l := startLink(r.t, ctx, r.cfg)
	r.inSync(ctx)
	require.NoError(r.t, l.Close())
}

// uuidOf finds the copy's UUID of the entry named dn.
func (r *deltaRig) uuidOf(ctx context.Context, dn string) uuid.UUID {
	r.t.Helper()
	ids, err := r.copy.Known(ctx)
	require.NoError(r.t, err)
	for _, id := range ids {
		e, err := r.copy.Entry(ctx, id)
		require.NoError(r.t, err)
		if e != nil && e.DN == dn {
			return id
		}
	}
	r.t.Fatalf("%s not in the copy", dn)
	return uuid.Nil
}

// logHolds counts the log's records of writes to dn.
func (r *deltaRig) logHolds(dn string) int {
	c, err := slapdtest.Bind(r.srv.URL(), slapdtest.ReplicatorDN, slapdtest.ReplicatorPW)
	require.NoError(r.t, err)
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(slapdtest.LogDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=auditWriteObject)(reqDN="+ldap.EscapeFilter(dn)+"))", []string{"1.1"}, nil))
	require.NoError(r.t, err)
	return len(res.Entries)
}

// A consumer down while the log is purged past its cookie is answered
// 4096 on the log: it refreshes the base from its cookie (present phase,
// the deletions made meanwhile pruned) and goes back to the log.
func TestDeltaGapByPurgeFallsBackAndReturns(t *testing.T) {
	r := newDeltaRig(t, "00:00:05 00:00:03")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r.syncThenStop(ctx)

	p := slapdtest.PeopleDN
	r.add("uid=gap,"+p, person("gap", nil))
	require.NoError(t, r.admin.Del(ldap.NewDelRequest("uid=p1,"+p, nil)))
	r.modify("uid=p2,"+p, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"while down"}) })
	require.Eventually(t, func() bool { return r.logHolds("uid=gap,"+p) == 0 }, 60*time.Second, 500*time.Millisecond, "the log was never purged")

	l := startLink(t, ctx, r.cfg)
	r.inSync(ctx)
	require.Equal(t, map[ldapadapter.FallbackCause]int64{ldapadapter.FallbackStaleCookie: 1}, l.Fallbacks())
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())
	r.modify("uid=p3,"+p, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"after"}) })
	r.inSync(ctx)
	require.Len(t, l.Fallbacks(), 1, "back on the log")
}

// Writes the log cannot apply to the copy make the link refresh the base
// and return to the log: a modify of an entry the copy lost, and an entry
// moved into the base from outside (the log has none of its attributes).
func TestDeltaWriteThatCannotApplyFallsBack(t *testing.T) {
	r := newDeltaRig(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r.syncThenStop(ctx)

	// The copy diverges: it loses uid=p1, and keeps its cookie.
	p := slapdtest.PeopleDN
	cookie, err := r.copy.Load()
	require.NoError(t, err)
	require.NoError(t, r.copy.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Delete, UUID: r.uuidOf(ctx, "uid=p1,"+p)}))
	require.NoError(t, r.copy.Save(cookie))

	l := startLink(t, ctx, r.cfg)
	r.modify("uid=p1,"+p, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"lost"}) })
	r.inSync(ctx)
	require.Equal(t, int64(1), l.Fallbacks()[ldapadapter.FallbackUnknownEntry])

	r.add("uid=outside,ou=elsewhere,"+slapdtest.BaseDN, person("outside", nil))
	r.rename("uid=outside,ou=elsewhere,"+slapdtest.BaseDN, "uid=outside", false, p)
	r.inSync(ctx)
	require.Equal(t, int64(1), l.Fallbacks()[ldapadapter.FallbackScope])
	require.Eventually(t, func() bool { return l.Protocol() == ldapadapter.ProtocolLog }, 10*time.Second, 20*time.Millisecond)
	// The protocol says log as the log search starts; its refresh stage
	// ends, and the link persists, a moment later.
	waitCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	_, err = l.WaitFor(waitCtx, replink.Persisting)
	require.NoError(t, err)
}

// crashingCopy is a store.Link whose process dies: from then on nothing it
// is handed is committed, as if the process had gone.
type crashingCopy struct {
	*store.Link
	dead atomic.Bool
}

func (c *crashingCopy) Apply(ctx context.Context, ch ldapadapter.Change) error {
	if c.dead.Load() {
		return nil
	}
	return c.Link.Apply(ctx, ch)
}

func (c *crashingCopy) Save(b []byte) error {
	if c.dead.Load() {
		return nil
	}
	return c.Link.Save(b)
}

// A consumer killed in the middle of the log resumes from the cookie it
// committed: nothing is lost, nothing applied twice (a write applied twice
// would not fit the copy and show as a fallback).
func TestDeltaCrashMidLogResumesFromTheCookie(t *testing.T) {
	r := newDeltaRig(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	crashing := &crashingCopy{Link: r.copy}
	cfg := r.cfg
	cfg.LDAP.Handler = crashing
	cfg.LDAP.CookieFlushInterval = 50 * time.Millisecond
	l := startLink(t, ctx, cfg)
	r.inSync(ctx)

	p := slapdtest.PeopleDN
	const n = 60
	for i := range n {
		r.modify(fmt.Sprintf("uid=p%d,%s", i%5, p), func(m *ldap.ModifyRequest) { m.Add("description", []string{fmt.Sprint("v", i)}) })
		if i == n/2 {
			crashing.dead.Store(true) // killed mid-stream
			l.Close()
		}
	}
	r.restart()
	l = startLink(t, ctx, r.cfg)
	r.inSync(ctx)
	require.Empty(t, l.Fallbacks())
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())
}

// recordingCopy is a MemoryStore that keeps the Mods of every change.
type recordingCopy struct {
	*ldapadapter.MemoryStore
	mu   sync.Mutex
	mods map[string][]ldapadapter.Mod // by DN
}

func (c *recordingCopy) Apply(ctx context.Context, ch ldapadapter.Change) error {
	c.mu.Lock()
	if ch.Mods != nil {
		c.mods[ch.DN] = ch.Mods
	}
	c.mu.Unlock()
	return c.MemoryStore.Apply(ctx, ch)
}

func (c *recordingCopy) modsOf(dn string) []ldapadapter.Mod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mods[dn]
}

// Change.Mods says what a modify changed: as logged, for a link that
// follows the log; computed against the stored entry, for whole-entry
// syncrepl in the persist stage.
func TestChangeModsSayWhatChanged(t *testing.T) {
	r := newDeltaRig(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, logBase := range []string{slapdtest.LogDN, ""} {
		copy := &recordingCopy{MemoryStore: ldapadapter.NewMemoryStore(), mods: map[string][]ldapadapter.Mod{}}
		cfg := linkConfig("mods", r.srv.URL(), copy, nil)
		cfg.LDAP.BaseDN, cfg.LDAP.LogBase = slapdtest.PeopleDN, logBase
		l := startLink(t, ctx, cfg)
		dn := "uid=p4," + slapdtest.PeopleDN
		r.modify(dn, func(m *ldap.ModifyRequest) { m.Add("description", []string{"mod-" + logBase}) })
		require.Eventually(t, func() bool { return copy.modsOf(dn) != nil }, 10*time.Second, 20*time.Millisecond)
		want := ldapadapter.Mod{Op: ldapadapter.ModAdd, Attr: "description", Values: [][]byte{[]byte("mod-" + logBase)}}
		require.Contains(t, copy.modsOf(dn), want, "protocol %s", l.Protocol())
		require.NoError(t, l.Close())
	}
}

// Delta links leave nothing behind: 50 links follow the log, all fall back
// at once (an entry moved into their base) and return to it, and shut
// down; a second round adds no goroutine, descriptor or heap.
func TestNoLeakDeltaLinks(t *testing.T) {
	r := newDeltaRig(t, "")
	round := func(n int) {
		c := startConsumer(t, 50, func(i int) ldapadapter.LinkConfig {
			cfg := linkConfig("l"+strconv.Itoa(i), r.srv.URL(), ldapadapter.NewMemoryStore(), nil)
			cfg.LDAP.BaseDN, cfg.LDAP.LogBase = slapdtest.PeopleDN, slapdtest.LogDN
			return cfg
		})
		uid := "mover" + strconv.Itoa(n)
		r.add("uid="+uid+",ou=elsewhere,"+slapdtest.BaseDN, person(uid, nil))
		r.rename("uid="+uid+",ou=elsewhere,"+slapdtest.BaseDN, "uid="+uid, false, slapdtest.PeopleDN)
		for _, l := range c.Links() {
			require.Eventually(t, func() bool {
				return l.Fallbacks()[ldapadapter.FallbackScope] == 1 && l.Protocol() == ldapadapter.ProtocolLog && l.State() == replink.Persisting
			}, 20*time.Second, 10*time.Millisecond)
		}
		require.NoError(t, c.Shutdown())
	}
	round(0)
	ignore := goleak.IgnoreCurrent()
	fds, heap := openFDs(t), heapInUse()
	round(1)
	checkBaseline(t, ignore, fds, heap)
}

// A link that resumes from a stored cookie refreshes nothing before the log,
// and must still commit what the log brings in its persist stage: it used
// to hold every cookie back as if inside a refresh, so nothing committed.
func TestDeltaResumesAndCommitsAfterRestart(t *testing.T) {
	r := newDeltaRig(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := startLink(t, ctx, r.cfg)
	r.inSync(ctx)
	require.NoError(t, l.Stop(ctx))
	require.NoError(t, l.Start(ctx))
	_, err := l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	r.add("uid=later,"+slapdtest.PeopleDN, map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {"later"}, "cn": {"Later"}, "sn": {"L"}})
	r.modify("uid=p1,"+slapdtest.PeopleDN, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"after the restart"}) })
	r.inSync(ctx) // reads the committed copy
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())
	require.Empty(t, l.Fallbacks())
}

// A log that has recorded no write (the provider was loaded with slapadd)
// answers every cookie with 53 until its first write: the link follows the
// base with whole entries on that connection, and the log on the next.
func TestDeltaEmptyLogFollowsWholeEntries(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithAccesslog(""), slapdtest.WithPeople(5))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db, err := store.Open(t.TempDir()+"/r.db", nil)
	require.NoError(t, err)
	defer db.Close()
	copy, err := db.Link("delta", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(t, err)
	cfg := linkConfig("delta", srv.URL(), copy, nil)
	cfg.LDAP.BaseDN, cfg.LDAP.LogBase = slapdtest.PeopleDN, slapdtest.LogDN
	l := startLink(t, ctx, cfg)
	_, err = l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Equal(t, ldapadapter.ProtocolSyncrepl, l.Protocol())
	require.NoError(t, srv.Write(3)) // reaches the copy as whole entries
	require.NoError(t, l.Stop(ctx))
	require.NoError(t, l.Start(ctx))
	_, err = l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())
	require.NoError(t, srv.Write(3))
	require.NoError(t, srv.Delete(1))
	var diff error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		want, err := srv.Snapshot(ctx, slapdtest.PeopleDN)
		require.NoError(t, err)
		got := map[string]map[string][]string{}
		require.NoError(t, db.Each("delta", func(e *ldap.Entry) error { got[e.DN] = ldapadapter.EntryAttributes(e); return nil }))
		if diff = realtarget.DiffTrees(want, got); diff == nil {
			return
		}
	}
	t.Fatalf("the copy differs from the provider: %v", diff)
}
