package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

type report struct {
	settings settings
	refresh  []refreshRow
	persist  latencies
	adds     latencies // the provider's own add round trips, for comparison
	detect   []detectRow
	links    linksResult
	busy     []busyRun
	delta    []deltaRow
	ad       *adResult
	took     time.Duration
}

func (r *report) markdown() string {
	var b strings.Builder
	s := r.settings
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("<!-- Written by `make bench` (go run ./bench). Do not edit: run it again. -->\n")
	w("# Benchmarks\n\n")
	mode := "full run"
	if s.quick {
		mode = "quick run (`make bench QUICK=1`): small sizes, few trials"
	}
	w("Measured on %s, %d cores, %s, %s; %s, %s. Every figure below comes from this one run of `make bench`, which starts its own slapd servers on loopback ports; ratios compare figures of the same run, never of different runs.\n\n",
		hostname(), runtime.NumCPU(), runtime.Version(), s.slapdVersion, mode, r.took.Round(time.Second))

	b.WriteString(r.refreshMarkdown())

	w("## Detection and recovery\n\n")
	w("Each fault %d times (fewer where a consumer never recovers). replink runs with keepalive 1 s + 1 s and backoff from 500 ms; *detected* is the time from the fault to the link's loss transition, *change arrives* the time from the fault until an entry written at the provider after it (after the restart, for a crash or a stop) reaches the handler. The OpenLDAP consumer (`syncrepl ... type=refreshAndPersist retry=\"1 +\"`) behind the same proxy is observed the only way it can be: by when that entry is readable on it. Figures are min / median / max.\n\n", s.faultTrials)
	w("| fault | real fault | replink bound | replink detected | replink change arrives |")
	for _, c := range openldapConfigs {
		w(" %s: change arrives |", c.name)
	}
	w("\n|---|---|---|---|---|")
	for range openldapConfigs {
		w("---|")
	}
	w("\n")
	var faults []string
	var rl, ol, ok []float64
	for _, d := range r.detect {
		w("| %s | %s | %v | %s | %s |", d.fault, d.real, d.bound, spread(d.detected), spread(d.arrived))
		for _, c := range openldapConfigs {
			switch {
			case d.tried[c.name] == 0:
				w(" – |")
			case d.missed[c.name] > 0:
				w(" %s; %d of %d never within %v |", spread(d.openldap[c.name]), d.missed[c.name], d.tried[c.name], s.window)
			default:
				w(" %s |", spread(d.openldap[c.name]))
			}
		}
		w("\n")
		if d.tried[openldapConfigs[0].name] > 0 {
			faults = append(faults, d.fault)
			rl = append(rl, median(d.arrived))
			ol = append(ol, medianOr(d.openldap[openldapConfigs[0].name], d.missed[openldapConfigs[0].name], s.window))
			ok = append(ok, medianOr(d.openldap[openldapConfigs[1].name], d.missed[openldapConfigs[1].name], s.window))
		}
	}
	w("\n```mermaid\nxychart-beta\n    title \"Fault to change arriving, median seconds (lower is better; a miss is drawn at the %v window)\"\n    x-axis [%s]\n    y-axis \"seconds\"\n    bar [%s]\n    bar [%s]\n    bar [%s]\n```\n\n", s.window, quoted(faults), floats(rl), floats(ol), floats(ok))
	w("Bars per fault, left to right: replink; OpenLDAP consumer with its defaults; OpenLDAP consumer with `keepalive=2:1:1`.\n\n")
	w("*Path stuck* is the class of faults where the peer's kernel still answers TCP but nothing comes through: a hung slapd (SIGSTOP), a middlebox that lost its state but keeps the socket, as the fault proxy does here. TCP keepalive, which `keepalive=` turns on, is answered by that kernel and cannot see it; only a request on the connection can, which is what replink's keepalive probe is. A host that vanishes (no kernel answers at all) is the other half-open case: TCP keepalive does see that one, and `make tour` measures replink on it with a network namespace that disappears.\n\n")

	p := r.persist
	w("## Persist latency\n\n")
	a := r.adds
	w("%d adds, one at a time, at the provider; from sending each add to the handler of a persisting link receiving it: p50 %v, p99 %v, max %v. For comparison, the add's own round trip (sent until slapd answered it, its write to disk included) in the same run: p50 %v, p99 %v, max %v.\n\n",
		len(p), round(p.at(0.5)), round(p.at(0.99)), round(p.at(1)), round(a.at(0.5)), round(a.at(0.99)), round(a.at(1)))

	b.WriteString(r.linksMarkdown())
	b.WriteString(r.busyMarkdown())
	b.WriteString(r.deltaMarkdown())
	b.WriteString(r.adMarkdown())
	w("## Go benchmarks of the hot path\n\n")
	w("`go test -run '^$' -bench 'Envelope|DecodeEntry|Refresh' -benchmem ./ldapadapter/`, `go test -run '^$' -bench BatchCommit ./store/`, `go test -run '^$' -bench Dispatch -benchmem ./fsm/`: envelope peek, entry decode (beside asn1-ber + go-ldap on the same frame), a whole refresh over loopback TCP, a 1,000-change batch commit, and one event through the engine, each with allocations per operation.\n")
	return b.String()
}

func spread(l latencies) string {
	if len(l) == 0 {
		return "–"
	}
	return fmt.Sprintf("%v / %v / %v", round(l.at(0)), round(l.at(0.5)), round(l.at(1)))
}

func round(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(10 * time.Millisecond)
}

func median(l latencies) float64 { return l.at(0.5).Seconds() }

func medianOr(l latencies, missed int, window time.Duration) float64 {
	if len(l) == 0 || missed > len(l) {
		return window.Seconds()
	}
	return median(l)
}

func shortName(s string) string {
	s, _, _ = strings.Cut(s, " (")
	s = strings.ReplaceAll(s, "replink, handler that does nothing", "replink no-op")
	s = strings.ReplaceAll(s, "replink into the ", "replink ")
	s = strings.ReplaceAll(s, " SyncreplConsumer", "")
	s = strings.ReplaceAll(s, "replink, HandlerFunc that counts", "replink counting, rootdn")
	s = strings.ReplaceAll(s, "ldapsearch -E sync=ro as the rootdn", "ldapsearch, rootdn")
	s = strings.ReplaceAll(s, "replink run into bbolt: the refresh", "replink run, refresh")
	s = strings.ReplaceAll(s, "replink run into bbolt: start to Persisting", "replink run, to Persisting")
	return s
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func floats(fs []float64) string {
	q := make([]string, len(fs))
	for i, f := range fs {
		q[i] = fmt.Sprintf("%.3g", f)
	}
	return strings.Join(q, ", ")
}

func hostname() string {
	b, err := readFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(b, "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// deltaMarkdown is the delta-syncrepl section.
func (r *report) deltaMarkdown() string {
	if len(r.delta) == 0 {
		return ""
	}
	var b strings.Builder
	s := r.settings
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Delta-syncrepl: one-attribute modifies on entries with an 8 KiB value\n\n")
	w("%d entries of ou=people each carry an 8 KiB jpegPhoto; %d modifies, one at a time, replace the description of one of them (round robin); the provider logs them into cn=accesslog. Each consumer sits behind a counting proxy: *bytes* are the LDAP bytes the provider sent it for the round; *live* is from the first write until the consumer holds the last, with the consumer persisting throughout (beside it, the lag: how long after the last write's answer the consumer held it); *catch-up* is from starting the consumer, stopped while a second round was written, until it holds that round's last write (for the OpenLDAP consumer, from when its slapd accepts connections: its process start is not counted). With the consumer down, whole-entry syncrepl sends each changed entry once however often it changed, while a log sends every write: catch-up bytes compare the two honestly.\n\n",
		s.deltaEntries, s.deltaModifies)
	w("| consumer | live: bytes | live: time (lag) | catch-up: bytes | catch-up: time | how |\n|---|---|---|---|---|---|\n")
	whole := r.delta[0]
	for _, row := range r.delta {
		w("| %s | %s (%.1f %%) | %v (%v) | %s (%.1f %%) | %v | %s |\n", row.name,
			kib(row.liveBytes), 100*float64(row.liveBytes)/float64(whole.liveBytes), row.live.Round(time.Millisecond), (row.live - row.writes).Round(time.Millisecond),
			kib(row.catchUpBytes), 100*float64(row.catchUpBytes)/float64(whole.catchUpBytes), row.catchUp.Round(time.Millisecond), row.how)
	}
	w("\nPercentages are of whole-entry syncrepl's bytes in the same round.")
	if len(r.delta) == 3 && r.delta[2].catchUp > 0 {
		w(" Catch-up, replink delta against OpenLDAP's delta consumer: %.2f× the time.", r.delta[1].catchUp.Seconds()/r.delta[2].catchUp.Seconds())
	}
	w("\n\n")
	return b.String()
}

func kib(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// sectionMarkdown is the part of the report one section writes, for a run
// of that section alone.
func (r *report) sectionMarkdown(name string) string {
	switch name {
	case "initial refresh":
		return r.refreshMarkdown()
	case "many links":
		return r.linksMarkdown()
	case "busy links":
		return r.busyMarkdown()
	case "delta":
		return r.deltaMarkdown()
	case "ad":
		return r.adMarkdown()
	}
	return ""
}

// linksMarkdown is the many-links section.
func (r *report) linksMarkdown() string {
	l := r.links
	if l.links == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## %d persisting links in one process\n\n", l.links)
	w("All to one slapd, keepalive %v + %v, all Persisting %v after StartAll (`go run ./bench \"many links\"` runs this section alone).\n\n", l.keepalive, l.timeout, l.settleDuration.Round(time.Millisecond))
	w("| measure | per link |\n|---|---|\n")
	w("| Go heap in use | %.1f KiB |\n| resident set | %.1f KiB |\n| goroutines | %.1f |\n", l.heapPerLink/1024, l.rssPerLink/1024, l.goroutinesPer)
	w("\nIdle, the whole process used %.2f %% of one core over %v, keepalive probes included", 100*l.idleCPU, l.idleWindow)
	if l.probes > 0 {
		w(": %.0f probes answered per second, %v of process CPU per probe", l.probes, l.cpuPerProbe.Round(100*time.Nanosecond))
	}
	w(".")
	if f := l.floor; f.raw > 0 && f.inRuntime > 0 && l.cpuPerProbe > 0 {
		w(" The floor, before the links started: the same number of connections to the same slapd, each sent the same probe on the same schedule by one goroutine that writes it and reads the answer one grid step later (10 ms from 200 links up) and does nothing else, cost %v per probe on sockets made with socket(2), which the Go runtime does not poll, and %v on sockets from package net, whose every answer also wakes the runtime's poller. replink's probe costs %.2f× the first and %.2f× the second.",
			f.raw.Round(100*time.Nanosecond), f.inRuntime.Round(100*time.Nanosecond), float64(l.cpuPerProbe)/float64(f.raw), float64(l.cpuPerProbe)/float64(f.inRuntime))
	}
	if l.idleLosses > 0 {
		w(" %d links left Persisting meanwhile, though the provider was up.", l.idleLosses)
	}
	w("\n\n")
	w("Then the provider was hung (SIGSTOP): %d links detected it. From the hang: min / median / max %s. From each link's last byte received, which the bound is about: %s against a bound of %v", len(l.detected), spread(l.detected), spread(l.silent), l.bound)
	if l.late > 0 {
		w("; %d links past the bound", l.late)
	} else if len(l.silent) > 0 {
		w("; every one inside it")
	}
	if l.undetected > 0 {
		w("; %d did not detect it within the bound + 5 s", l.undetected)
	}
	w(".\n\n")
	w("Meanwhile, in this process: up to %d goroutines waiting for a core at once (sampled every 10 ms), scheduling latency p99 %v and max %v, %d goroutines created, %d GC cycles using %.2f s of CPU. The host's load average (1 min) was %s at the hang and %s once the links had detected: on 2 cores, other processes' work delays the checks too.\n\n",
		l.maxRunnable, l.sched.latP99, l.sched.latMax, l.sched.created, l.sched.gcCycles, l.sched.gcCPU, l.loadAtHang, l.loadAfter)
	w("The section took %v. Profiles of the same run: `REPLINK_BENCH_IDLEPROFILE=idle.prof` (CPU, idle window), `REPLINK_BENCH_CPUPROFILE=detect.prof` or `REPLINK_BENCH_TRACE=detect.trace` (the detection), `REPLINK_BENCH_HEAPPROFILE=heap.prof` (all persisting).\n\n", l.took.Round(time.Second))
	return b.String()
}

// refreshMarkdown is the initial refresh section.
func (r *report) refreshMarkdown() string {
	if len(r.refresh) == 0 {
		return ""
	}
	var b strings.Builder
	s := r.settings
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	n := s.entries + 1
	w("## Initial refresh of %d entries\n\n", n)
	w("One refresh of ou=people (%d inetOrgPerson entries of about 200 bytes) from one slapd, best of %d. Each row names the identity it binds as, and its limit is `ldapsearch -E sync=ro` reading the same refresh with nothing to do, bound as that same identity:\n\n", s.entries, s.trials)
	w("* **%s**: slapd evaluates an ACL for every entry and is itself the bottleneck, so these figures say how close a consumer comes to a slow provider;\n", asReplicator)
	w("* **%s**: slapd evaluates no ACL and is not the bottleneck, so these figures are the consumer's own limit. Its trials alternate with ldapsearch's.\n\n", asRootDN)
	switch {
	case s.entries > bigRefresh:
		w("Above %d entries only the rows against the fast provider run.\n\n", bigRefresh)
	case s.identity != "both":
		w("Only the rows bound as the %s ran (`-identity %s`).\n\n", s.identity, s.identity)
	}
	w("| consumer | identity | time | entries/s | of the limit | peak heap (per entry) | peak live heap (per entry) | how |\n|---|---|---|---|---|---|---|---|\n")
	var names []string
	var rates []float64
	for _, row := range r.refresh {
		if row.took == 0 {
			w("| %s | %s | – | – | – | – | – | %s |\n", row.name, row.identity, row.note)
			continue
		}
		rate := float64(n) / row.took.Seconds()
		limit := r.refresh[row.vs].took
		w("| %s | %s | %v | %.0f | %.0f %% | %s | %s | %s |\n", row.name, row.identity, row.took.Round(time.Millisecond), rate, 100*limit.Seconds()/row.took.Seconds(),
			perEntry(row.peakHeap, n), perEntry(row.peakLive, n), row.command)
		names = append(names, shortName(row.name))
		rates = append(rates, rate)
	}
	w("\nThe daemon's peak heap is the largest heap any of its garbage collections began with, its peak live heap the most any of them found alive (GODEBUG=gctrace=1, whole MiB), over all trials: with GOGC=100 the first is up to twice the second. Reproduce: `go run ./bench \"initial refresh\"` prints this section alone; `go run ./bench -entries N -trials T \"initial refresh\"` at another size; `-identity rootdn` or `-identity replicator` runs the rows of one identity alone.\n")
	w("\n```mermaid\nxychart-beta\n    title \"Initial refresh, entries per second (higher is better)\"\n    x-axis [%s]\n    y-axis \"entries/s\"\n    bar [%s]\n```\n\n", quoted(names), floats(rates))
	return b.String()
}

// perEntry is a heap size and its share per entry, or – when not measured.
func perEntry(bytes uint64, entries int) string {
	if bytes == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB (%.0f B)", float64(bytes)/(1<<20), float64(bytes)/float64(entries))
}
