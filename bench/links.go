package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// linksResult is what many persisting links cost in one process.
type linksResult struct {
	links          int
	heapPerLink    float64 // bytes
	rssPerLink     float64 // bytes
	goroutinesPer  float64
	idleCPU        float64 // fraction of one core
	idleWindow     time.Duration
	keepalive      time.Duration
	bound          time.Duration
	detected       latencies
	undetected     int
	settleDuration time.Duration
}

// linksSection runs s.links persisting links to one slapd in this process,
// keepalive 10 s + 2 s, measures what they cost at rest, then hangs the
// provider and measures when each link notices.
func linksSection(ctx context.Context, h *slapdtest.Harness, s settings) linksResult {
	raiseFileLimit(2*s.links + 256)
	srv := slapdtest.Start(h, slapdtest.WithPeople(5))
	r := linksResult{links: s.links, keepalive: 10 * time.Second, bound: 12 * time.Second, idleWindow: s.idle}
	heap0, rss0, g0 := footprint()
	c := ldapadapter.NewConsumer(fsm.WithLogger(quiet))
	defer c.Shutdown()
	m := fsm.DefaultConfig()
	m.KeepaliveInterval, m.KeepaliveTimeout = r.keepalive, 2*time.Second
	var mu sync.Mutex
	var paused time.Time
	detected := map[string]time.Duration{}
	for i := range s.links {
		l, err := c.Add(ldapadapter.LinkConfig{Name: "l" + strconv.Itoa(i), Machine: m, LDAP: ldapadapter.Config{
			URL: srv.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.PeopleDN, Handler: &counter{}, Logger: quiet,
		}})
		if err != nil {
			h.Fatal(err)
		}
		l.Watch(func(t fsm.Transition) {
			if t.Event == replink.KeepaliveMiss {
				mu.Lock()
				if !paused.IsZero() {
					if _, seen := detected[t.Link]; !seen {
						detected[t.Link] = t.Time.Sub(paused)
					}
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	if err := c.StartAll(ctx); err != nil {
		h.Fatal(err)
	}
	for _, l := range c.Links() {
		waitState(h, l, replink.Persisting)
	}
	r.settleDuration = time.Since(start)
	time.Sleep(time.Second)
	heap1, rss1, g1 := footprint()
	n := float64(s.links)
	r.heapPerLink, r.rssPerLink, r.goroutinesPer = (heap1-heap0)/n, (rss1-rss0)/n, (g1-g0)/n

	cpu0 := cpuTime()
	time.Sleep(s.idle)
	r.idleCPU = (cpuTime() - cpu0).Seconds() / s.idle.Seconds()

	mu.Lock()
	paused = time.Now()
	mu.Unlock()
	srv.Pause()
	deadline := time.Now().Add(r.bound + 5*time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(detected) == s.links
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.Resume()
	mu.Lock()
	for _, d := range detected {
		r.detected = append(r.detected, d)
	}
	mu.Unlock()
	slices.Sort(r.detected)
	r.undetected = s.links - len(r.detected)
	return r
}

// counter is a Handler of one link that only counts: each link needs its
// own (a Consumer refuses to share one).
type counter struct{ n atomic.Int64 }

func (c *counter) Apply(context.Context, ldapadapter.Change) error { c.n.Add(1); return nil }
func (c *counter) Known(context.Context) ([]uuid.UUID, error)      { return nil, nil }

// footprint is the Go heap in use, the process's resident set, and the
// number of goroutines, after a collection.
func footprint() (heap, rss, goroutines float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse), float64(residentBytes()), float64(runtime.NumGoroutine())
}

func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit makes room for one socket per link.
func raiseFileLimit(n int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < uint64(n) {
		l.Cur = min(uint64(n), l.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cannot raise the open file limit:", err)
		}
	}
}
