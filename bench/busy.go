package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// busyRun is one round of the busy-links section: links of one kind
// receiving the same stream of modifies.
type busyRun struct {
	consumer  bool          // the links are a Consumer's (its poller), else each stands alone
	delivered int64         // changes applied, all links together
	cpu       time.Duration // process CPU from the first modify until every link had every change
	took      time.Duration // wall time of the same
}

func (b busyRun) perChange() time.Duration {
	if b.delivered == 0 {
		return 0
	}
	return b.cpu / time.Duration(b.delivered)
}

// busySection measures what a change costs a link that is busy after
// idling: s.busyLinks persisting links, first idle long enough for their
// keepalive answers to park them (in the Consumer's poller, for links that
// have one), then s.busyModifies modifies at the provider, as fast as it
// takes them. Rounds alternate between a Consumer's links and standalone
// links (NewLink), which wait on their own goroutines: the Consumer's
// poller is for idle links and should cost a busy one nothing.
func busySection(ctx context.Context, h *slapdtest.Harness, s settings) (runs []busyRun) {
	raiseFileLimit(2*s.busyLinks + 256)
	srv := slapdtest.Start(h, slapdtest.WithPeople(5))
	admin, err := srv.Admin()
	if err != nil {
		h.Fatal(err)
	}
	defer admin.Close()
	for round := range 4 {
		runs = append(runs, busyRound(ctx, h, s, srv.URL(), admin, round%2 == 0))
	}
	return runs
}

func busyRound(ctx context.Context, h *slapdtest.Harness, s settings, url string, admin *ldap.Conn, consumer bool) busyRun {
	m := fsm.DefaultConfig()
	m.KeepaliveInterval, m.KeepaliveTimeout = time.Second, time.Second
	var c *ldapadapter.Consumer
	if consumer {
		c = ldapadapter.NewConsumer(fsm.WithLogger(quiet))
		defer c.Shutdown()
	}
	counters := make([]*counter, s.busyLinks)
	links := make([]*ldapadapter.Link, s.busyLinks)
	for i := range links {
		counters[i] = &counter{}
		cfg := ldapadapter.LinkConfig{Name: "busy" + strconv.Itoa(i), Machine: m, LDAP: ldapadapter.Config{
			URL: url, BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.PeopleDN, Handler: counters[i], Logger: quiet,
		}}
		var err error
		if consumer {
			links[i], err = c.Add(cfg)
		} else {
			links[i], err = ldapadapter.NewLink(cfg, fsm.WithLogger(quiet))
		}
		if err != nil {
			h.Fatal(err)
		}
		if !consumer {
			defer links[i].Close()
		}
	}
	for _, l := range links {
		if err := l.Start(ctx); err != nil {
			h.Fatal(err)
		}
	}
	for _, l := range links {
		waitState(h, l, replink.Persisting)
	}
	time.Sleep(m.KeepaliveInterval + m.KeepaliveTimeout) // a probe's answer each: idle, as links are before a burst
	total := func() (n int64) {
		for _, c := range counters {
			n += c.n.Load()
		}
		return n
	}
	base := total()
	want := base + int64(s.busyLinks*s.busyModifies)
	cpu0, start := cpuTime(), time.Now()
	for i := range s.busyModifies {
		req := ldap.NewModifyRequest(fmt.Sprintf("uid=p%d,%s", i%5, slapdtest.PeopleDN), nil)
		req.Replace("description", []string{"busy " + strconv.Itoa(i)})
		if err := admin.Modify(req); err != nil {
			h.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for total() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r := busyRun{consumer: consumer, cpu: cpuTime() - cpu0, took: time.Since(start), delivered: total() - base}
	if r.delivered != want-base {
		h.Fatalf("busy links: %d of %d changes delivered within a minute", r.delivered, want-base)
	}
	return r
}

// busyMarkdown is the busy-links section.
func (r *report) busyMarkdown() string {
	if len(r.busy) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	s := r.settings
	w("## %d busy links\n\n", s.busyLinks)
	w("%d links to one slapd, keepalive 1 s + 1 s, idle until each has had a probe answered, then %d modifies at the provider, one at a time, each reaching every link. Process CPU (getrusage) from the first modify until every link had every change, per change delivered to one link. Rounds alternate between the links of one Consumer, which park in its poller while idle, and standalone links (`NewLink`), which wait on their own goroutines (`go run ./bench \"busy links\"` runs this section alone).\n\n", s.busyLinks, s.busyModifies)
	w("| round | links | CPU per delivered change | all delivered after |\n|---|---|---|---|\n")
	var sum [2]time.Duration
	var n [2]int
	for i, run := range r.busy {
		kind, k := "standalone", 0
		if run.consumer {
			kind, k = "one Consumer", 1
		}
		sum[k] += run.perChange()
		n[k]++
		w("| %d | %s | %v | %v |\n", i+1, kind, run.perChange().Round(100*time.Nanosecond), round(run.took))
	}
	if n[0] > 0 && n[1] > 0 {
		w("\nA Consumer's busy link costs %.2f× a standalone link's CPU per change (mean of the rounds).\n", float64(sum[1])/float64(n[1])/(float64(sum[0])/float64(n[0])))
	}
	w("\n")
	return b.String()
}
