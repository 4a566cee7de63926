// Package realtarget runs conformance scenarios against a real provider,
// OpenLDAP's slapd, 389-ds or a Samba AD DC (over DirSync): each abstract fault of a script is mapped to
// the real one (a signal, a proxy action, a vanishing network namespace),
// the consumer's copy is a MemoryStore and its cookie a file.
package realtarget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/dstest"
	"github.com/replink/replink/internal/sambatest"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// ErrUnsupported marks a fault this target cannot inject for real.
var ErrUnsupported = errors.New("fault not available against a real provider")

// Kind names a provider implementation; scenario lines qualified with it
// run only against it.
type Kind string

// The providers a Target can run.
const (
	Slapd Kind = "slapd" // OpenLDAP slapd with syncprov
	DS389 Kind = "389ds" // 389 Directory Server with Content Synchronization
)

// Provider is what a Target needs of a real server: slapdtest.Server,
// dstest.Server and a Samba DC (sambaDC) are one.
type Provider interface {
	slapdtest.Directory
	slapdtest.Process
	Addr() string
	URL() string
	Pause()
	Resume()
	Stop()
	Write(n int) error
	Delete(n int) error
	SetReplicatorPassword(pw string) error
	ReplaceBase() error
	Snapshot(ctx context.Context, base string) (map[string]map[string][]string, error)
}

// Target runs conformance scripts against a real provider behind a fault
// proxy, with a MemoryStore as the consumer's copy of ou=people and a
// cookie file. The consumer syncs ou=people rather than the suffix so that
// the provider can be made to demand a full refresh for real, by replacing
// that base.
type Target struct {
	t       slapdtest.TB
	kind    Kind
	srv     Provider
	proxy   *slapdtest.Proxy
	ns      *slapdtest.Netns // half-open scenarios only
	store   *failingStore
	cookies string
	proc    *crashableCookies
	delta   bool // the link follows the provider's accesslog
	samba   *sambaDC
}

// New starts a provider of the given kind with 20 changes written: inside
// a network namespace of its own when halfOpen (it can vanish), else on
// loopback behind a fault proxy.
func New(t slapdtest.TB, kind Kind, halfOpen bool) *Target {
	st := &Target{t: t, kind: kind, store: &failingStore{MemoryStore: ldapadapter.NewMemoryStore()}, cookies: filepath.Join(t.TempDir(), "cookie")}
	if kind == Samba {
		// A DC always lives in a namespace of its own.
		st.samba = startSamba(t)
		st.srv = st.samba
		if halfOpen {
			st.ns = st.samba.Netns
		} else {
			st.proxy = slapdtest.NewProxy(t, st.srv.Addr())
		}
		if err := st.srv.Write(20); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if halfOpen {
		st.ns = slapdtest.NewNetns(t)
	}
	st.srv = Start(t, kind, st.ns)
	if !halfOpen {
		st.proxy = slapdtest.NewProxy(t, st.srv.Addr())
	}
	if err := st.srv.Write(20); err != nil {
		t.Fatal(err)
	}
	return st
}

// NewDelta is New for a delta-syncrepl link: slapd logs its writes into an
// accesslog, and the link follows it (Config.LogBase).
func NewDelta(t slapdtest.TB, halfOpen bool) *Target {
	st := &Target{t: t, kind: Slapd, delta: true, store: &failingStore{MemoryStore: ldapadapter.NewMemoryStore()}, cookies: filepath.Join(t.TempDir(), "cookie")}
	if halfOpen {
		st.ns = slapdtest.NewNetns(t)
		st.srv = slapdtest.Start(t, ns(st.ns), slapdtest.WithAccesslog(""))
	} else {
		st.srv = slapdtest.Start(t, slapdtest.WithAccesslog(""))
		st.proxy = slapdtest.NewProxy(t, st.srv.Addr())
	}
	if err := st.srv.Write(20); err != nil {
		t.Fatal(err)
	}
	return st
}

func ns(n *slapdtest.Netns) func(*slapdtest.Server) { return n.Place }

// Start starts a provider of the given kind on loopback, or inside ns
// when it is not nil. A Samba DC always starts in a namespace of its own
// (ns is not used).
func Start(t slapdtest.TB, kind Kind, ns *slapdtest.Netns) Provider {
	t.Helper()
	switch {
	case kind == Slapd && ns != nil:
		return slapdtest.Start(t, ns.Place)
	case kind == Slapd:
		return slapdtest.Start(t)
	case kind == DS389 && ns != nil:
		return dstest.Start(t, dstest.InNetns(ns))
	case kind == DS389:
		return dstest.Start(t)
	case kind == Samba:
		return startSamba(t)
	}
	t.Fatalf("realtarget: unknown provider kind %q", kind)
	return nil
}

// Require skips (or under CI=true fails) the test when the provider of
// the given kind is not installed.
func Require(t slapdtest.TB, kind Kind) {
	t.Helper()
	switch kind {
	case DS389:
		dstest.Require(t)
		return
	case Samba:
		sambatest.Require(t)
		return
	}
	slapdtest.Require(t)
}

// Name is the provider kind, for scenario lines qualified with one.
func (st *Target) Name() string { return string(st.kind) }

func (st *Target) url() string {
	if st.proxy != nil {
		return st.proxy.URL()
	}
	return st.srv.URL()
}

func (st *Target) Adapter() fsm.Adapter {
	st.proc = &crashableCookies{inner: ldapadapter.FileCookieStore{Path: st.cookies}}
	if st.samba != nil {
		return st.dirSyncAdapter()
	}
	a, err := ldapadapter.New(ldapadapter.Config{
		URL:    st.url(),
		BindDN: slapdtest.ReplicatorDN,
		// The half-open provider lives on a namespace's address, not on
		// loopback; the bytes never leave the machine.
		AllowCleartextPassword: true,
		Password:               slapdtest.ReplicatorPW,
		BaseDN:                 slapdtest.PeopleDN,
		Handler:                st.store,
		Cookies:                st.proc,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		LogBase:                st.logBase(),
	})
	if err != nil {
		st.t.Fatal(err)
	}
	return a
}

// dirSyncAdapter links the DC's domain over DirSync, as its replicator.
func (st *Target) dirSyncAdapter() fsm.Adapter {
	a, err := ldapadapter.New(ldapadapter.Config{
		URL:    st.url(),
		BindDN: st.samba.replicatorDN,
		// The DC lives in a namespace of the test; the bytes never leave
		// the machine.
		AllowCleartextPassword: true,
		Password:               sambaReplicatorPW,
		BaseDN:                 sambatest.BaseDN,
		Mode:                   ldapadapter.ModeDirSync,
		DirSyncPoll:            SambaPoll,
		Handler:                st.store,
		Cookies:                st.proc,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		st.t.Fatal(err)
	}
	return a
}

func (st *Target) logBase() string {
	if st.delta {
		return slapdtest.LogDN
	}
	return ""
}

func (st *Target) Fault(name string, arg time.Duration) error {
	if st.samba != nil && name == "provider-end-persist" {
		return fmt.Errorf("%w: %s: a DirSync link has no persist search for the provider to end (its change notification is only a wake-up)", ErrUnsupported, name)
	}
	switch name {
	case "provider-hang":
		st.srv.Pause()
	case "provider-resume":
		st.srv.Resume()
	case "provider-stop":
		st.srv.Stop()
	case "provider-crash":
		st.srv.Kill()
	case "provider-start":
		st.srv.Launch()
	case "provider-notice":
		st.proxy.Notice()
	case "provider-end-persist":
		st.proxy.EndPersist()
	case "link-close":
		st.proxy.CloseAll()
	case "link-reset":
		st.proxy.ResetAll()
	case "link-blackhole":
		st.proxy.Blackhole(true)
	case "link-restore":
		st.proxy.Blackhole(false)
	case "link-idle-cut":
		st.proxy.IdleCut(arg)
	case "provider-vanish":
		st.ns.Vanish(st.srv)
	case "provider-return":
		st.ns.Return(st.srv)
	case "protocol-error":
		st.proxy.Inject([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}) // a 2 GiB length prefix
	case "handler-error":
		st.store.failNext.Store(true)
	case "refuse-credentials":
		return st.srv.SetReplicatorPassword("changed-by-admin")
	case "refresh-required":
		return st.srv.ReplaceBase()
	case "accept-credentials":
		return st.srv.SetReplicatorPassword(slapdtest.ReplicatorPW)
	default:
		return fmt.Errorf("%w: %s", ErrUnsupported, name)
	}
	return nil
}

func (st *Target) Write(n int) error  { return st.srv.Write(n) }
func (st *Target) Delete(n int) error { return st.srv.Delete(n) }
func (st *Target) Crash()             { st.proc.dead.Store(true) }

// InSync compares the provider with the consumer's copy. A change made just
// before the check may still be on its way, so it looks a few times.
func (st *Target) InSync() error {
	if st.samba != nil {
		return st.sambaInSync()
	}
	var err error
	for i := 0; i < 40; i++ {
		var want map[string]map[string][]string
		want, err = st.srv.Snapshot(context.Background(), slapdtest.PeopleDN)
		if err != nil {
			return err
		}
		if err = DiffTrees(want, st.store.Snapshot()); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// sambaInSync compares the DC with the copy by objectGUID. A deletion
// reaches the copy only with the next poll (Samba notifies none), so it
// looks for a few poll periods.
func (st *Target) sambaInSync() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for deadline := time.Now().Add(5 * SambaPoll); ; time.Sleep(100 * time.Millisecond) {
		if err = SambaDiff(ctx, st.samba.Server, st.store); err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// DiffTrees describes how got differs from want (DN → attribute → values), or returns nil.
func DiffTrees(want, got map[string]map[string][]string) error {
	var d []string
	for dn, w := range want {
		g, ok := got[dn]
		if !ok {
			d = append(d, "missing "+dn)
			continue
		}
		if fmt.Sprint(sortedAttrs(w)) != fmt.Sprint(sortedAttrs(g)) {
			d = append(d, "differs "+dn)
		}
	}
	for dn := range got {
		if _, ok := want[dn]; !ok {
			d = append(d, "extra "+dn)
		}
	}
	if len(d) == 0 {
		return nil
	}
	sort.Strings(d)
	return fmt.Errorf("%d entries vs %d: %s", len(got), len(want), strings.Join(d, "; "))
}

func sortedAttrs(m map[string][]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, strings.ToLower(k)+"="+strings.Join(v, ","))
	}
	sort.Strings(out)
	return out
}

// failingStore fails the next change when told to (fault handler-error).
type failingStore struct {
	*ldapadapter.MemoryStore
	failNext atomic.Bool
}

func (s *failingStore) Apply(ctx context.Context, c ldapadapter.Change) error {
	if s.failNext.CompareAndSwap(true, false) {
		return errors.New("disk full (injected)")
	}
	return s.MemoryStore.Apply(ctx, c)
}

// crashableCookies loses every save once its process has "crashed".
type crashableCookies struct {
	inner ldapadapter.CookieStore
	dead  atomic.Bool
	mu    sync.Mutex
}

func (c *crashableCookies) Load() ([]byte, error) { return c.inner.Load() }
func (c *crashableCookies) Save(b []byte) error {
	if c.dead.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inner.Save(b)
}
