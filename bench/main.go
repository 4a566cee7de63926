// Command bench measures replink against the limit of the wire and beside
// OpenLDAP's own consumer and python-ldap's, all in one run on this
// machine, and writes docs/benchmarks.md. It starts its own slapd servers
// on loopback ports (make bench; make bench QUICK=1 for a short run).
//
// Nothing here asserts a speed: the report gives figures and ratios
// measured in the same run, with the commands that produced them.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/replink/replink/internal/slapdtest"
)

// settings size a run.
type settings struct {
	quick       bool
	entries     int    // initial refresh
	identity    string // initial refresh: the rows of rootdn, replicator or both
	baseline    string // initial refresh: another tree whose daemon alternates with this one's
	trials      int    // refresh trials (best is kept)
	faultTrials int    // detection trials per fault
	window      time.Duration
	adds        int // persist latency
	links       int // many links
	// busy links: links that each receive every one of the modifies
	busyLinks, busyModifies int
	idle                    time.Duration
	slapdVersion            string
	// delta section: one-attribute modifies on entries with an 8 KiB value
	deltaEntries, deltaModifies int
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func main() {
	out := flag.String("o", "docs/benchmarks.md", "report file")
	quick := flag.Bool("quick", false, "a short run (under a minute)")
	entries := flag.Int("entries", 0, "entries of the initial refresh (default 50,000; 3,000 with -quick)")
	trials := flag.Int("trials", 0, "refresh trials, the best kept (default 3; 1 with -quick)")
	identity := flag.String("identity", "both", "initial refresh: the rows bound as the rootdn (the fast provider), as the replicator (the ACL-evaluating one), or both")
	baseline := flag.String("baseline", "", "initial refresh: a source tree of replink whose daemon runs too, alternating with this tree's in every trial (before/after)")
	flag.Parse()
	s := settings{quick: *quick, entries: 50000, trials: 3, faultTrials: 10, window: 20 * time.Second, adds: 1000, links: 10000, idle: 20 * time.Second}
	s.deltaEntries, s.deltaModifies = 100, 2000
	s.busyLinks, s.busyModifies = 1000, 200
	if s.quick {
		s = settings{quick: true, entries: 3000, trials: 1, faultTrials: 1, window: 3 * time.Second, adds: 200, links: 100, idle: 3 * time.Second,
			deltaEntries: 20, deltaModifies: 200, busyLinks: 50, busyModifies: 20}
	}
	if *entries > 0 {
		s.entries = *entries
	}
	if *trials > 0 {
		s.trials = *trials
	}
	if *identity != "both" && *identity != "rootdn" && *identity != "replicator" {
		fmt.Fprintln(os.Stderr, "bench: -identity: want rootdn, replicator or both")
		os.Exit(2)
	}
	s.identity, s.baseline = *identity, *baseline
	only := flag.Arg(0) // a section name runs that section alone (for development)
	if slapdtest.Binary() == "" {
		fmt.Fprintln(os.Stderr, "bench: slapd is not installed (apt-get install slapd ldap-utils)")
		os.Exit(1)
	}
	s.slapdVersion = slapdVersion()
	start := time.Now()
	r := &report{settings: s}
	h := &slapdtest.Harness{}
	defer h.Close()
	ctx := context.Background()
	steps := []struct {
		name string
		run  func()
	}{
		{"initial refresh", func() { r.refresh = refreshSection(ctx, h, s) }},
		{"persist latency", func() { r.persist, r.adds = persistSection(ctx, h, s) }},
		{"detection", func() { r.detect = detectSection(ctx, h, s) }},
		{"many links", func() { r.links = linksSection(ctx, h, s) }},
		{"busy links", func() { r.busy = busySection(ctx, h, s) }},
		{"delta", func() { r.delta = deltaSection(ctx, h, s) }},
		{"ad", func() { r.ad = adSection(ctx, h, s) }},
	}
	for _, st := range steps {
		if only != "" && st.name != only {
			continue
		}
		t := time.Now()
		fmt.Fprintf(os.Stderr, "bench: %s...\n", st.name)
		if err := h.Run(st.run); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", st.name, err)
			h.Close() // the servers it started: os.Exit runs no defers
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "bench: %s done in %v\n", st.name, time.Since(t).Round(time.Second))
	}
	r.took = time.Since(start)
	if only != "" {
		fmt.Print(r.sectionMarkdown(only))
		return
	}
	if err := os.WriteFile(*out, []byte(r.markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		h.Close()
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s in %v\n", *out, r.took.Round(time.Second))
}
