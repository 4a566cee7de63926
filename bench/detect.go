package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
)

// fault is one fault of the tour, injected for real.
type fault struct {
	name    string
	real    string
	bound   time.Duration // replink's configured detection bound
	inject  func()
	restore func() // after detection: the provider serves again
	openldp bool   // also run against the OpenLDAP consumer (a change can be written after it)
}

// detectRow is one fault's figures.
type detectRow struct {
	fault, real string
	bound       time.Duration
	detected    latencies // replink: fault to the loss transition
	arrived     latencies // replink: fault to the arrival of a change written after it
	openldap    map[string]latencies
	missed      map[string]int // OpenLDAP trials in which the change never came
	tried       map[string]int
}

var openldapConfigs = []struct{ name, extra string }{
	{"OpenLDAP consumer, defaults", ""},
	{"OpenLDAP consumer, keepalive=2:1:1", "keepalive=2:1:1"},
}

// detectSection injects each fault s.faultTrials times under a replink link
// (keepalive 1 s + 1 s) and under OpenLDAP's consumer with and without TCP
// keepalive, all through the same fault proxy.
func detectSection(ctx context.Context, h *slapdtest.Harness, s settings) []detectRow {
	srv := slapdtest.Start(h, slapdtest.WithPeople(20))
	proxy := slapdtest.NewProxy(h, srv.Addr())
	faults := []fault{
		{"provider-hang", "SIGSTOP", 2 * time.Second, srv.Pause, srv.Resume, false},
		{"path stuck", "the proxy keeps the TCP connection but forwards nothing, no FIN", 2 * time.Second, proxy.Sever, func() {}, true},
		{"provider-crash", "SIGKILL, then restart", 50 * time.Millisecond, srv.Kill, srv.Launch, true},
		{"provider-stop", "SIGTERM, then restart", 50 * time.Millisecond, srv.Stop, srv.Launch, true},
		{"provider-notice", "Notice of Disconnection, then close", 50 * time.Millisecond, proxy.Notice, func() {}, true},
	}
	var rows []detectRow
	for _, f := range faults {
		rows = append(rows, detectRow{fault: f.name, real: f.real, bound: f.bound,
			openldap: map[string]latencies{}, missed: map[string]int{}, tried: map[string]int{}})
	}
	replinkTrials(ctx, h, srv, proxy, faults, rows, s)
	for _, cfg := range openldapConfigs {
		for i, f := range faults {
			if f.openldp {
				openldapTrials(h, srv, proxy, f, &rows[i], cfg.name, cfg.extra, s)
			}
		}
	}
	return rows
}

var marker int

// write adds an entry at the provider, directly, and returns its DN.
func write(h *slapdtest.Harness, srv *slapdtest.Server) string {
	marker++
	dn := fmt.Sprintf("uid=marker%d,%s", marker, slapdtest.PeopleDN)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := srv.Admin()
		if err == nil {
			err = c.Add(person(dn, fmt.Sprintf("marker%d", marker)))
			c.Close()
		}
		if err == nil {
			return dn
		}
		if time.Now().After(deadline) {
			h.Fatalf("write %s: %v", dn, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func replinkTrials(ctx context.Context, h *slapdtest.Harness, srv *slapdtest.Server, proxy *slapdtest.Proxy, faults []fault, rows []detectRow, s settings) {
	m := fsm.DefaultConfig()
	m.KeepaliveInterval, m.KeepaliveTimeout = time.Second, time.Second
	m.Backoff.Initial, m.Backoff.Max = 500*time.Millisecond, 2*time.Second
	n := newNotifier()
	l, done := persistingLink(ctx, h, proxy.URL(), n, m)
	defer done()
	trs := make(chan fsm.Transition, 64)
	defer l.Watch(func(t fsm.Transition) { trs <- t })()
	for i, f := range faults {
		for range s.faultTrials {
			waitState(h, l, replink.Persisting)
			drain(trs)
			start := time.Now()
			f.inject()
			tr := nextLoss(h, trs)
			rows[i].detected = append(rows[i].detected, tr.Time.Sub(start))
			f.restore()
			dn := write(h, srv)
			select {
			case t := <-n.wait(dn):
				rows[i].arrived = append(rows[i].arrived, t.Sub(start))
			case <-time.After(s.window):
			}
		}
		slices.Sort(rows[i].detected)
		slices.Sort(rows[i].arrived)
	}
}

func waitState(h *slapdtest.Harness, l interface {
	WaitFor(context.Context, ...replink.State) (replink.State, error)
	History() []fsm.Transition
}, s replink.State) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.WaitFor(ctx, s); err != nil {
		h.Fatalf("never %s: %v", s, l.History())
	}
}

func drain(c chan fsm.Transition) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// nextLoss waits for the transition that leaves the connected states.
func nextLoss(h *slapdtest.Harness, c chan fsm.Transition) fsm.Transition {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case t := <-c:
			if t.To == replink.Polling || t.To == replink.Failed {
				return t
			}
		case <-timeout:
			h.Fatal("no loss detected within 30 s")
		}
	}
}

// openldapTrials runs one fault against an OpenLDAP consumer behind the
// proxy: the time from the fault until a change written after it (after
// the restart, for a crash or stop) is readable at the consumer. Two
// misses in a row end the trials: it does not recover on its own.
func openldapTrials(h *slapdtest.Harness, srv *slapdtest.Server, proxy *slapdtest.Proxy, f fault, row *detectRow, name, extra string, s settings) {
	c := slapdtest.Start(h, slapdtest.WithSyncrepl(syncreplDirective(proxy.URL(), extra)))
	defer c.Kill()
	misses := 0
	for range s.faultTrials {
		if !arrives(c, write(h, srv), 30*time.Second) { // in sync before the fault
			h.Fatalf("%s never caught up", name)
		}
		row.tried[name]++
		start := time.Now()
		f.inject()
		f.restore()
		dn := write(h, srv)
		if arrives(c, dn, s.window) {
			row.openldap[name] = append(row.openldap[name], time.Since(start))
			misses = 0
			continue
		}
		row.missed[name]++
		if misses++; misses == 2 {
			break
		}
		c.Kill() // a consumer stuck on a dead connection: start it afresh
		c.Launch()
	}
	slices.Sort(row.openldap[name])
}

// arrives polls the consumer for dn until it is there or within passes.
func arrives(c *slapdtest.Server, dn string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if conn, err := c.Admin(); err == nil {
			res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
			conn.Close()
			if err == nil && len(res.Entries) == 1 {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func ldapLower(dn string) string { return strings.ToLower(dn) }
