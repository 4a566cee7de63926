package ldapadapter_test

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
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/conformance"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// errUnsupported marks a fault this target cannot inject for real.
var errUnsupported = errors.New("fault not available against a real slapd")

// slapdTarget runs conformance scripts against a real slapd behind a fault
// proxy, with a MemoryStore as the consumer's copy and a cookie file.
type slapdTarget struct {
	t       *testing.T
	srv     *slapdtest.Server
	proxy   *slapdtest.Proxy
	ns      *slapdtest.Netns // half-open scenarios only
	store   *failingStore
	cookies string
	proc    *crashableCookies
}

func newSlapdTarget(t *testing.T, halfOpen bool) *slapdTarget {
	st := &slapdTarget{t: t, store: &failingStore{MemoryStore: ldapadapter.NewMemoryStore()}, cookies: filepath.Join(t.TempDir(), "cookie")}
	if halfOpen {
		st.ns = slapdtest.NewNetns(t)
		st.srv = slapdtest.Start(t, st.ns.Place)
	} else {
		st.srv = slapdtest.Start(t)
		st.proxy = slapdtest.NewProxy(t, st.srv.Addr())
	}
	require.NoError(t, st.srv.Write(20))
	return st
}

func (st *slapdTarget) url() string {
	if st.proxy != nil {
		return st.proxy.URL()
	}
	return st.srv.URL()
}

func (st *slapdTarget) Adapter() fsm.Adapter {
	st.proc = &crashableCookies{inner: ldapadapter.FileCookieStore{Path: st.cookies}}
	a, err := ldapadapter.New(ldapadapter.Config{
		URL:      st.url(),
		BindDN:   slapdtest.ReplicatorDN,
		Password: slapdtest.ReplicatorPW,
		BaseDN:   slapdtest.BaseDN,
		Handler:  st.store,
		Cookies:  st.proc,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(st.t, err)
	return a
}

func (st *slapdTarget) Fault(name string, arg time.Duration) error {
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
	case "accept-credentials":
		return st.srv.SetReplicatorPassword(slapdtest.ReplicatorPW)
	default:
		return fmt.Errorf("%w: %s", errUnsupported, name)
	}
	return nil
}

func (st *slapdTarget) Write(n int) error  { return st.srv.Write(n) }
func (st *slapdTarget) Delete(n int) error { return st.srv.Delete(n) }
func (st *slapdTarget) Crash()             { st.proc.dead.Store(true) }

// InSync compares the provider with the consumer's copy. A change made just
// before the check may still be on its way, so it looks a few times.
func (st *slapdTarget) InSync() error {
	var err error
	for i := 0; i < 40; i++ {
		var want map[string]map[string][]string
		want, err = st.srv.Snapshot(context.Background())
		if err != nil {
			return err
		}
		if err = diffTrees(want, st.store.Snapshot()); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func diffTrees(want, got map[string]map[string][]string) error {
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

// realTimeQuiet caps "quiet" steps: minutes of virtual silence become
// seconds of real silence.
const realTimeQuiet = 12 * time.Second

// TestScenariosAgainstSlapd runs every conformance scenario against a real
// OpenLDAP slapd with real faults, in real time.
func TestScenariosAgainstSlapd(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time scenarios against slapd: not in -short")
	}
	slapdtest.Require(t)
	files, err := filepath.Glob("../testdata/conformance/*.txt")
	require.NoError(t, err)
	for _, f := range files {
		s, err := conformance.ParseFile(f)
		require.NoError(t, err)
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			halfOpen := strings.Contains(name, "half-open")
			if halfOpen {
				slapdtest.RequireNetns(t)
			}
			target := newSlapdTarget(t, halfOpen)
			res, err := conformance.Run(t.Context(), s, target, conformance.Options{
				Slack:    250 * time.Millisecond,
				MaxQuiet: realTimeQuiet,
				MachineOptions: []fsm.Option{
					fsm.WithName(name),
					fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
				},
			})
			if errors.Is(err, errUnsupported) {
				t.Skip(err)
			}
			require.NoError(t, err)
			for _, m := range res.Measured {
				t.Logf("measured %s:%d %-45s %v", name, m.Line, m.Step, m.Elapsed.Round(time.Millisecond))
			}
			require.NoError(t, res.Err(), "transcript:\n%s", res.Transcript)
		})
	}
}
