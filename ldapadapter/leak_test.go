package ldapadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// checkBaseline fails when goroutines, file descriptors or the heap have
// not come back to where they were.
func checkBaseline(t *testing.T, ignore goleak.Option, fds int, heap uint64) {
	t.Helper()
	goleak.VerifyNone(t, ignore)
	require.Eventually(t, func() bool { return openFDs(t) <= fds }, 5*time.Second, 10*time.Millisecond, "file descriptors: %d, were %d", openFDs(t), fds)
	after := heapInUse()
	t.Logf("heap in use %d -> %d bytes", heap, after)
	require.Less(t, int64(after)-int64(heap), int64(1<<20), "heap grew from %d to %d bytes", heap, after)
}

// 1,000 connect, fail, stop cycles of one link leave nothing behind.
func TestNoLeakAfterManyCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 cycles: not in -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "ldap://" + ln.Addr().String()
	ln.Close() // nobody listens there now: each connection is refused
	cfg := fsm.DefaultConfig()
	cfg.Backoff.Initial, cfg.Backoff.Max = time.Hour, time.Hour // Polling until stopped
	l, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "c", Machine: cfg, LDAP: ldapadapter.Config{
		URL: url, BaseDN: "dc=t", Handler: ldapadapter.NewMemoryStore(), Logger: discard,
	}}, fsm.WithLogger(discard))
	require.NoError(t, err)
	defer l.Close()
	ctx := t.Context()
	cycle := func() {
		require.NoError(t, l.Start(ctx))
		_, err := l.WaitFor(ctx, replink.Polling)
		require.NoError(t, err)
		require.NoError(t, l.Stop(ctx))
	}
	cycle() // the runtime's caches warm up on the first
	ignore := goleak.IgnoreCurrent()
	fds, heap := openFDs(t), heapInUse()
	for range 1000 {
		cycle()
	}
	checkBaseline(t, ignore, fds, heap)
}

// Consumer.Shutdown of 1,000 persisting links leaves nothing behind.
func TestNoLeakAfterShutdownOfManyLinks(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 links: not in -short")
	}
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	if lim.Cur < 4096 {
		lim.Cur = min(4096, lim.Max)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < 2200 {
		t.Skipf("open file limit %d is too low for 1,000 links", lim.Cur)
	}
	srv := slapdtest.Start(t, slapdtest.WithPeople(3))
	round := func() {
		c := startConsumer(t, 1000, func(i int) ldapadapter.LinkConfig {
			return linkConfig("l"+strconv.Itoa(i), srv.URL(), ldapadapter.NewMemoryStore(), nil)
		})
		require.NoError(t, c.Shutdown())
	}
	// The runtime keeps what 5,000 goroutines needed (their descriptors,
	// stack caches) once they are gone: the baseline is taken after a
	// first round, and a second round must not add to it.
	round()
	ignore := goleak.IgnoreCurrent()
	fds, heap := openFDs(t), heapInUse()
	round()
	checkBaseline(t, ignore, fds, heap)
}

// startConsumer starts a consumer of n links, configured by cfg, and
// returns once every one persists.
func startConsumer(t *testing.T, n int, cfg func(i int) ldapadapter.LinkConfig) *ldapadapter.Consumer {
	t.Helper()
	c := ldapadapter.NewConsumer(fsm.WithLogger(discard))
	for i := range n {
		_, err := c.Add(cfg(i))
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, c.StartAll(ctx))
	for _, l := range c.Links() {
		_, err := l.WaitFor(ctx, replink.Persisting)
		require.NoError(t, err)
	}
	return c
}

// A provider flooding the sync search with refresh-done messages moves the
// machine once: the adapter posts one event per fact, so the mailbox
// cannot grow with what a provider sends.
func TestWireFloodIsOneEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWire(t, func(p *peer, id int64, _ []byte) {
			for range 5000 {
				p.write(refreshDeleteDone(id, "c"))
				p.write(syncEntry(id, "cn=x,dc=t", uuid.New(), 1, ""))
			}
		}, nil)
		waitState(t, w.machine, replink.Persisting, time.Second)
		time.Sleep(10 * time.Second)
		require.Len(t, w.machine.History(), 3, "start, connected, refresh-done: %v", w.machine.History())
	})
}

// A persisting syncrepl link costs at most three goroutines (its machine,
// the tap's reader, the sync session): go-ldap's reader and processor end
// once the link persists. A stopped link keeps only its machine's. Counts,
// not times: keepalive is long, so no probe goroutine is in flight. The
// links are made under a pprof label, which every goroutine they start
// inherits, so goroutines of other tests are not counted.
func TestGoroutinesPerLink(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(3))
	const links = 50
	ignore := goleak.IgnoreCurrent()
	var c *ldapadapter.Consumer
	pprof.Do(t.Context(), pprof.Labels("test", t.Name()), func(context.Context) {
		c = startConsumer(t, links, func(i int) ldapadapter.LinkConfig {
			cfg := linkConfig("g"+strconv.Itoa(i), srv.URL(), ldapadapter.NewMemoryStore(), nil)
			cfg.Machine.KeepaliveInterval, cfg.Machine.KeepaliveTimeout = time.Hour, time.Minute
			return cfg
		})
	})
	perLink := func() float64 { return float64(labelledGoroutines(t, "test", t.Name())) / links }
	for _, tc := range []struct {
		name  string
		reach func()
		most  float64
	}{
		{"persisting", func() {}, 3},
		{"stopped", func() {
			for _, l := range c.Links() {
				require.NoError(t, l.Stop(t.Context()))
			}
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.reach()
			// go-ldap ends on its own goroutine once the link persists:
			// wait for the count, bounded.
			var got float64
			if !assert.Eventually(t, func() bool { got = perLink(); return got <= tc.most }, 10*time.Second, 10*time.Millisecond) {
				t.Fatalf("%.2f goroutines per link, want at most %v", got, tc.most)
			}
		})
	}
	require.NoError(t, c.Shutdown())
	require.Zero(t, labelledGoroutines(t, "test", t.Name()), "goroutines left after Shutdown")
	goleak.VerifyNone(t, ignore)
}

// labelledGoroutines counts the goroutines carrying the pprof label k=v.
func labelledGoroutines(t *testing.T, k, v string) int {
	var b bytes.Buffer
	require.NoError(t, pprof.Lookup("goroutine").WriteTo(&b, 1))
	want := fmt.Sprintf("%q:%q", k, v)
	n, count := 0, 0
	for _, line := range strings.Split(b.String(), "\n") {
		switch {
		case strings.Contains(line, " @ 0x"): // "N @ 0x...": a group of N alike
			count, _ = strconv.Atoi(strings.Fields(line)[0])
		case strings.HasPrefix(line, "# labels: ") && strings.Contains(line, want):
			n += count
		}
	}
	return n
}
