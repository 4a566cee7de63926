package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
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
	links         int
	heapPerLink   float64 // bytes
	rssPerLink    float64 // bytes
	goroutinesPer float64
	idleCPU       float64 // fraction of one core
	idleWindow    time.Duration
	probes        float64 // keepalive answers read per second while idle
	cpuPerProbe   time.Duration
	floor         floorResult // the least a probe can cost here
	keepalive     time.Duration
	timeout       time.Duration
	bound         time.Duration
	detected      latencies // from the hang to each link's keepalive-miss
	silent        latencies // from each link's last byte received to its keepalive-miss
	late          int       // detections whose silence exceeded the bound
	undetected    int
	idleLosses    int // links that left Persisting before the hang
	// While the links detect the hang: the most goroutines waiting for a
	// core at once (sampled every 10 ms), and the runtime's own counts.
	maxRunnable    int
	sched          schedStats
	settleDuration time.Duration
	// The host's load average over 1 minute when the provider was hung
	// and once the links had detected: other processes on the same cores
	// delay the checks as much as this one's own work does.
	loadAtHang, loadAfter string
	took                  time.Duration // the whole section, setup included
}

// linksSection runs s.links persisting links to one slapd in this process,
// keepalive 2 s + 2 s, measures what they cost at rest, then hangs the
// provider and measures when each link notices: from the hang, and from
// the last byte that link received, which is what the bound is about.
// REPLINK_BENCH_TRACE=FILE writes a runtime/trace of the detection.
func linksSection(ctx context.Context, h *slapdtest.Harness, s settings) (r linksResult) {
	raiseFileLimit(2*s.links + 256) // slapd inherits it
	began := time.Now()
	defer func() { r.took = time.Since(began) }()
	srv := slapdtest.Start(h, slapdtest.WithPeople(5))
	r = linksResult{links: s.links, keepalive: 2 * time.Second, timeout: 2 * time.Second, idleWindow: s.idle}
	r.bound = r.keepalive + r.timeout
	if !s.quick { // a hundred links' CPU is the process's fixed costs: no floor shows through
		r.floor = probeFloor(h, srv, s.links, r.keepalive, s.idle)
	}
	heap0, rss0, g0 := footprint()
	c := ldapadapter.NewConsumer(fsm.WithLogger(quiet))
	defer c.Shutdown()
	m := fsm.DefaultConfig()
	m.KeepaliveInterval, m.KeepaliveTimeout = r.keepalive, r.timeout
	var mu sync.Mutex
	var paused time.Time
	type detection struct{ sincePause, silent time.Duration }
	detected := map[string]detection{}
	var idle atomic.Bool        // all persist, the provider is not hung yet
	var idleLosses atomic.Int64 // links that left Persisting meanwhile
	for i := range s.links {
		l, err := c.Add(ldapadapter.LinkConfig{Name: "l" + strconv.Itoa(i), Machine: m, LDAP: ldapadapter.Config{
			URL: srv.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.PeopleDN, Handler: &counter{}, Logger: quiet,
		}})
		if err != nil {
			h.Fatal(err)
		}
		l.Watch(func(t fsm.Transition) {
			if t.From == replink.Persisting && idle.Load() {
				idleLosses.Add(1)
			}
			var se *fsm.SilenceError
			if t.Event != replink.KeepaliveMiss || !errors.As(t.Cause, &se) {
				return
			}
			mu.Lock()
			if _, seen := detected[t.Link]; !paused.IsZero() && !seen {
				detected[t.Link] = detection{t.Time.Sub(paused), se.Silent}
			}
			mu.Unlock()
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
	idle.Store(true)
	time.Sleep(time.Second)
	heap1, rss1, g1 := footprint()
	writeHeapProfile()
	n := float64(s.links)
	r.heapPerLink, r.rssPerLink, r.goroutinesPer = (heap1-heap0)/n, (rss1-rss0)/n, (g1-g0)/n

	answer := probeAnswerSize(c.Links()[0], r.keepalive+r.timeout+time.Second)
	stopProfile := startProfile("REPLINK_BENCH_IDLEPROFILE")
	bytes0, cpu0 := receivedBytes(c), cpuTime()
	// For a profiler that looks from outside: perf record -p PID.
	fmt.Fprintf(os.Stderr, "bench: many links: the idle window (%v) begins\n", s.idle)
	time.Sleep(s.idle)
	cpu, bytes := cpuTime()-cpu0, receivedBytes(c)-bytes0
	stopProfile()
	r.idleCPU = cpu.Seconds() / s.idle.Seconds()
	if answer > 0 && bytes > 0 {
		probes := float64(bytes) / float64(answer)
		r.probes = probes / s.idle.Seconds()
		r.cpuPerProbe = time.Duration(float64(cpu) / probes)
	}

	idle.Store(false)
	r.idleLosses = int(idleLosses.Load())
	stopTrace := startProfile("REPLINK_BENCH_TRACE", "REPLINK_BENCH_CPUPROFILE")
	sched0 := readSched()
	stopSampling := sampleRunnable()
	mu.Lock()
	paused = time.Now()
	mu.Unlock()
	r.loadAtHang = loadAverage()
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
	r.maxRunnable = stopSampling()
	r.loadAfter = loadAverage()
	fmt.Fprintln(os.Stderr, "bench: TCP sockets on this host once the links detected the hang:", tcpStates())
	r.sched = readSched().since(sched0)
	stopTrace()
	srv.Resume()
	mu.Lock()
	for _, d := range detected {
		r.detected = append(r.detected, d.sincePause)
		r.silent = append(r.silent, d.silent)
		if d.silent > r.bound {
			r.late++
		}
	}
	mu.Unlock()
	slices.Sort(r.detected)
	slices.Sort(r.silent)
	r.undetected = s.links - len(r.detected)
	return r
}

// probeAnswerSize is the size of one keepalive answer, read off one idle
// persisting link: the smallest step of its received-byte count within
// wait (nothing else arrives on an idle link), or 0 if none was seen.
func probeAnswerSize(l *ldapadapter.Link, wait time.Duration) int64 {
	var step int64
	last := l.ReceivedBytes()
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if n := l.ReceivedBytes(); n != last {
			if d := n - last; step == 0 || d < step {
				step = d
			}
			last = n
		}
	}
	return step
}

func receivedBytes(c *ldapadapter.Consumer) int64 {
	var n int64
	for _, l := range c.Links() {
		n += l.ReceivedBytes()
	}
	return n
}

// schedStats are the runtime's scheduler and GC counters over a window.
type schedStats struct {
	latP99, latMax time.Duration // runnable until running, per scheduling
	gcCycles       uint64
	gcCPU          float64 // cpu-seconds spent in the GC
	created        uint64  // goroutines created
	hist           *metrics.Float64Histogram
}

var schedMetrics = []string{"/sched/latencies:seconds", "/gc/cycles/total:gc-cycles", "/cpu/classes/gc/total:cpu-seconds", "/sched/goroutines-created:goroutines"}

func readSched() schedStats {
	ms := make([]metrics.Sample, len(schedMetrics))
	for i, n := range schedMetrics {
		ms[i].Name = n
	}
	metrics.Read(ms)
	h := ms[0].Value.Float64Histogram()
	h.Counts = slices.Clone(h.Counts)
	return schedStats{hist: h, gcCycles: ms[1].Value.Uint64(), gcCPU: ms[2].Value.Float64(), created: ms[3].Value.Uint64()}
}

// since is the window from o to s: counts subtracted, latency quantiles
// read off the histogram's difference (upper bucket bounds).
func (s schedStats) since(o schedStats) schedStats {
	d := schedStats{gcCycles: s.gcCycles - o.gcCycles, gcCPU: s.gcCPU - o.gcCPU, created: s.created - o.created}
	var total uint64
	diff := make([]uint64, len(s.hist.Counts))
	for i := range diff {
		diff[i] = s.hist.Counts[i] - o.hist.Counts[i]
		total += diff[i]
	}
	var seen uint64
	for i, n := range diff {
		if n == 0 {
			continue
		}
		seen += n
		up := time.Duration(s.hist.Buckets[i+1] * float64(time.Second))
		if s.hist.Buckets[i+1] > 1e9 { // the last bucket is unbounded
			up = time.Duration(s.hist.Buckets[i] * float64(time.Second))
		}
		if d.latP99 == 0 && seen >= total-total/100 {
			d.latP99 = up
		}
		d.latMax = up
	}
	return d
}

// sampleRunnable samples the number of runnable goroutines every 10 ms
// until the returned function is called, which returns the largest seen.
func sampleRunnable() (stop func() int) {
	done, out := make(chan struct{}), make(chan int)
	go func() {
		ms := []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
		most := 0
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				metrics.Read(ms)
				most = max(most, int(ms[0].Value.Uint64()))
			case <-done:
				out <- most
				return
			}
		}
	}()
	return func() int { close(done); return <-out }
}

// tcpStates counts this host's IPv4 TCP sockets by state (/proc/net/tcp),
// both ends of loopback connections included.
func tcpStates() map[string]int {
	names := map[string]string{"01": "established", "02": "syn-sent", "03": "syn-recv", "04": "fin-wait-1", "05": "fin-wait-2",
		"06": "time-wait", "07": "close", "08": "close-wait", "09": "last-ack", "0A": "listen", "0B": "closing"}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil
	}
	n := map[string]int{}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 3 {
			n[names[f[3]]]++
		}
	}
	return n
}

// writeHeapProfile writes the heap profile into $REPLINK_BENCH_HEAPPROFILE,
// if set: what the persisting links hold.
func writeHeapProfile() {
	name := os.Getenv("REPLINK_BENCH_HEAPPROFILE")
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: heap profile:", err)
	}
}

// startProfile starts what the environment variables among envs ask for:
// REPLINK_BENCH_TRACE=FILE a runtime/trace, REPLINK_BENCH_CPUPROFILE=FILE
// (of the detection) or REPLINK_BENCH_IDLEPROFILE=FILE (of the idle
// window) a CPU profile, and returns what stops them.
func startProfile(envs ...string) (stop func()) {
	var stops []func()
	for _, env := range envs {
		name := os.Getenv(env)
		if name == "" {
			continue
		}
		start, end := pprof.StartCPUProfile, pprof.StopCPUProfile
		if env == "REPLINK_BENCH_TRACE" {
			start, end = trace.Start, trace.Stop
		}
		f, err := os.Create(name)
		if err == nil {
			if err = start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", env, err)
			continue
		}
		stops = append(stops, func() { end(); f.Close() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
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

// loadAverage is the host's load average over the last minute, as
// /proc/loadavg gives it, or "?" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
