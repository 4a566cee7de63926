package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// TestSoak runs a seeded random schedule of real faults, several at once,
// while a writer adds, modifies, renames, moves and deletes entries at the
// provider. Two consumers follow it through a fault proxy: the replink
// binary (killed with SIGKILL and restarted from its bbolt file, stopped and
// started over HTTP, reconfigured by SIGHUP) and a library link whose
// handler fails when told to. When the schedule ends, both copies must equal
// the provider exactly.
//
//	REPLINK_SOAK=20m REPLINK_SOAK_SEED=42 go test -run TestSoak -v ./cmd/replink/   (make soak)
//
// Without REPLINK_SOAK it runs for 2 minutes (30 s with -short), seed 2.
func TestSoak(t *testing.T) {
	d := 2 * time.Minute
	if testing.Short() {
		d = 30 * time.Second
	}
	if v := os.Getenv("REPLINK_SOAK"); v != "" {
		var err error
		d, err = time.ParseDuration(v)
		require.NoError(t, err, "REPLINK_SOAK")
	}
	// make test runs one schedule, the same every time, so that its result
	// says something about the code and not about luck; make soak (which
	// sets REPLINK_SOAK) draws a new one unless told which.
	seed := uint64(2)
	if os.Getenv("REPLINK_SOAK") != "" {
		seed = uint64(time.Now().UnixNano())
	}
	if v := os.Getenv("REPLINK_SOAK_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "REPLINK_SOAK_SEED")
	}
	t.Logf("soak seed %d, %v: reproduce with REPLINK_SOAK=%v REPLINK_SOAK_SEED=%d go test -run TestSoak -v ./cmd/replink/", seed, d, d, seed)
	newSoak(t, seed).run(d)
}

type soak struct {
	t     *testing.T
	rng   *rand.Rand
	srv   *slapdtest.Server
	ns    *slapdtest.Netns // nil without root: no vanishing host
	proxy *slapdtest.Proxy
	dir   string
	cfg   string
	bin   *proc
	keep  string // the binary's keepalive, flipped by SIGHUP

	lib     *ldapadapter.Link
	libDB   *store.DB
	libCopy *flaky

	trace   *soakTrace
	binLogs []string // the logs of the binary's processes before this one

	writes   atomic.Int64
	survived map[string]int
	worst    time.Duration
	worstAt  string
	revived  bool // slapd was found hung and restarted
}

// flaky is a store link whose next Apply fails when told to.
type flaky struct {
	*store.Link
	failNext atomic.Bool
	trace    *soakTrace
}

func (f *flaky) Apply(ctx context.Context, c ldapadapter.Change) error {
	err := errors.New("disk full (injected)")
	if !f.failNext.CompareAndSwap(true, false) {
		err = f.Link.Apply(ctx, c)
	}
	f.traceApply(c, err)
	return err
}

// recoveryBound is how long a consumer may take to be Persisting again once
// every fault is lifted: keepalive 1 s + 1 s, backoff at most 2 s, a
// connect timeout of 3 s, and a refresh.
const recoveryBound = 15 * time.Second

func newSoak(t *testing.T, seed uint64) *soak {
	s := &soak{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), dir: t.TempDir(), keep: "1s", survived: map[string]int{}, trace: newSoakTrace()}
	var opts []func(*slapdtest.Server)
	if os.Geteuid() == 0 {
		s.ns = slapdtest.NewNetns(t)
		opts = append(opts, s.ns.Place)
	} else {
		t.Log("not root: the provider cannot vanish with its namespace; that fault is left out")
	}
	s.srv = slapdtest.Start(t, append(opts, slapdtest.WithPeople(200))...)
	s.proxy = slapdtest.NewProxy(t, s.srv.Addr())
	s.ensureStaff()
	s.cfg = filepath.Join(s.dir, "replink.yaml")
	s.writeConfig()
	s.bin = start(t, "--config", s.cfg)

	db, err := store.Open(filepath.Join(s.dir, "lib.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	sl, err := db.Link("lib", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(t, err)
	s.libDB, s.libCopy = db, &flaky{Link: sl, trace: s.trace}
	lib, err := ldapadapter.NewLink(s.libConfig(time.Second), fsm.WithLogger(quietLog()))
	require.NoError(t, err)
	t.Cleanup(func() { lib.Close() })
	s.lib = lib
	require.NoError(t, lib.Start(t.Context()))
	s.waitPersisting("start")
	return s
}

func (s *soak) libConfig(keepalive time.Duration) ldapadapter.LinkConfig {
	m := fsm.DefaultConfig()
	m.KeepaliveInterval, m.KeepaliveTimeout = keepalive, time.Second
	m.ConnectTimeout = 3 * time.Second
	m.Backoff.Initial, m.Backoff.Max = 200*time.Millisecond, 2*time.Second
	return ldapadapter.LinkConfig{Name: "lib", Machine: m, LDAP: ldapadapter.Config{
		URL: s.proxy.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
		BaseDN: slapdtest.PeopleDN, Handler: s.libCopy, Logger: quietLog(), CookieFlushInterval: 200 * time.Millisecond,
	}}
}

func (s *soak) writeConfig() {
	pw := filepath.Join(s.dir, "pw")
	require.NoError(s.t, os.WriteFile(pw, []byte(slapdtest.ReplicatorPW), 0o600))
	body := fmt.Sprintf(`store: %s
links:
  - name: soak
    url: %s
    bind-dn: %s
    password-file: %s
    base: %s
    keepalive: %s
    keepalive-timeout: 1s
    connect-timeout: 3s
    backoff-initial: 200ms
    backoff-max: 2s
    commit-interval: 200ms
`, filepath.Join(s.dir, "replica.db"), s.proxy.URL(), slapdtest.ReplicatorDN, pw, slapdtest.PeopleDN, s.keep)
	require.NoError(s.t, os.WriteFile(s.cfg, []byte(body), 0o600))
}

// A fault is applied, held, and lifted; its kind keeps two faults of one
// kind (two things done to the provider at once, say) from overlapping.
type soakFault struct {
	name string
	kind string // provider, path, consumer
	hold bool   // lasts until lifted; otherwise instantaneous
	on   func()
	off  func()
}

func (s *soak) faults() []soakFault {
	nothing := func() {}
	fs := []soakFault{
		{"provider hang (SIGSTOP)", "provider", true, s.srv.Pause, s.srv.Resume},
		{"provider crash (SIGKILL) and restart", "provider", true, s.srv.Kill, s.srv.Launch},
		{"provider clean restart (SIGTERM)", "provider", true, s.srv.Stop, s.srv.Launch},
		{"refresh required (base replaced)", "provider", false, func() {
			if err := s.srv.ReplaceBase(); err == nil {
				s.ensureStaff()
			}
		}, nothing},
		{"black-holed path", "path", true, func() { s.proxy.Blackhole(true) }, func() { s.proxy.Blackhole(false) }},
		{"middlebox idle cut (500 ms)", "path", true, func() { s.proxy.IdleCut(500 * time.Millisecond) }, func() { s.proxy.IdleCut(0) }},
		{"Notice of Disconnection", "path", false, s.proxy.Notice, nothing},
		{"stuck path (no FIN)", "path", false, s.proxy.Sever, nothing},
		{"SIGKILL of replink, restart from its store", "consumer", true, func() { s.bin.kill() }, s.restartBinary},
		{"admin stop/start over HTTP", "consumer", true, func() { s.bin.post("/links/soak/stop") }, func() { s.bin.post("/links/soak/start") }},
		{"SIGHUP with a changed keepalive", "consumer", false, s.reconfigureBinary, nothing},
		{"handler error", "consumer", false, func() { s.libCopy.failNext.Store(true) }, nothing},
		{"admin stop/start of the library link", "consumer", true, func() { s.lib.Stop(context.Background()) }, func() { s.lib.Start(context.Background()) }},
		{"library link reconfigured", "consumer", false, func() {
			s.lib.Reconfigure(context.Background(), s.libConfig(time.Duration(1+s.rng.IntN(2))*time.Second))
		}, nothing},
	}
	if s.ns != nil {
		fs = append(fs, soakFault{"half-open: the provider's host vanishes", "provider", true,
			func() { s.ns.Vanish(s.srv) }, func() { s.ns.Return(s.srv) }})
	}
	return fs
}

func (s *soak) restartBinary() {
	s.binLogs = append(s.binLogs, s.bin.log())
	s.bin = start(s.t, "--config", s.cfg)
}

func (s *soak) reconfigureBinary() {
	if s.keep == "1s" {
		s.keep = "2s"
	} else {
		s.keep = "1s"
	}
	s.writeConfig()
	s.bin.signal(syscall.SIGHUP)
}

func (s *soak) run(d time.Duration) {
	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	writerSeed := s.rng.Uint64() // drawn here: the schedule's generator is this goroutine's
	go func() { defer wg.Done(); s.writer(ctx, writerSeed) }()
	faults := s.faults()
	deadline := time.Now().Add(d)
	for steps := 0; time.Now().Before(deadline) && steps < 10000; steps++ {
		// One fault, or two of different kinds at once.
		picked := []soakFault{faults[s.rng.IntN(len(faults))]}
		if s.rng.IntN(3) == 0 {
			if g := faults[s.rng.IntN(len(faults))]; g.kind != picked[0].kind {
				picked = append(picked, g)
			}
		}
		for _, f := range picked {
			s.trace.add('F', "on: %s", f.name)
			f.on()
		}
		time.Sleep(time.Duration(300+s.rng.IntN(2700)) * time.Millisecond)
		for i := len(picked) - 1; i >= 0; i-- {
			s.trace.add('F', "off: %s", picked[i].name)
			picked[i].off()
		}
		names := make([]string, len(picked))
		for i, f := range picked {
			names[i] = f.name
			s.survived[f.name]++
		}
		s.waitPersisting(strings.Join(names, " + "))
		time.Sleep(time.Duration(200+s.rng.IntN(800)) * time.Millisecond)
	}
	stopWriter()
	wg.Wait()
	s.waitPersisting("end of schedule")
	s.converged()
	s.report()
}

// providerHung says whether slapd answers no bind and base search, asked
// directly (not through the fault proxy) with a few seconds to do it.
func (s *soak) providerHung() bool {
	done := make(chan error, 1)
	go func() {
		c, err := slapdtest.Bind(s.srv.URL(), slapdtest.AdminDN, slapdtest.AdminPW)
		if err == nil {
			_, err = c.Search(ldap.NewSearchRequest(slapdtest.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 3, false, "(objectClass=*)", []string{"1.1"}, nil))
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject)
	case <-time.After(8 * time.Second):
		return true
	}
}

// waitPersisting waits for both consumers to be Persisting again and keeps
// the worst time it took.
func (s *soak) waitPersisting(after string) {
	start := time.Now()
	ok := func() bool {
		st := s.bin.status()
		return len(st) == 1 && st[0].State == "Persisting" && s.lib.State() == replink.Persisting
	}
	// A replaced base empties the copy: the deletion guard holds that
	// reload, and the soak approves it as an operator would. After any
	// other fault a held deletion is a defect.
	replaced := strings.Contains(after, "base replaced")
	for !ok() {
		if replaced && s.bin.status()[0].HeldDeletions != nil {
			// 409 is "no deletions are held": the status was read just
			// before the last approval's refresh took them. A refusal of
			// any other kind leaves the link Failed, which the bound
			// below reports.
			require.Contains(s.t, []int{http.StatusOK, http.StatusConflict}, s.bin.post("/links/soak/approve-deletions"))
		}
		if replaced && s.lib.HeldDeletions() != nil {
			if err := s.lib.ApproveDeletions(context.Background()); err != nil && !errors.Is(err, ldapadapter.ErrNothingHeld) {
				s.t.Fatalf("approving the library link's held deletions: %v", err)
			}
		}
		if time.Since(start) > recoveryBound && !s.revived && s.providerHung() {
			// slapd itself stopped answering (seen after a replaced base,
			// 3 times in about 40 soaks on a loaded machine, every consumer
			// then timing out in its connect): a provider defect the
			// consumers cannot cure. Restart it as an operator would, once
			// per run, and hold the consumers to the same bound from there.
			s.t.Logf("slapd answers no bind after %s: a hung provider; restarting it (SIGKILL and start)", after)
			s.trace.add('F', "slapd hung after %s: restarted", after)
			s.revived = true
			s.srv.Kill()
			s.srv.Launch()
			start = time.Now()
			continue
		}
		if time.Since(start) > 2*recoveryBound {
			s.t.Fatalf("not Persisting %v after %s: binary %s, library link %s\nbinary log:\n%s\nlibrary link history: %v",
				time.Since(start).Round(time.Millisecond), after, s.bin.status()[0].State, s.lib.State(), tail(s.bin.log(), 30), s.lib.History())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.trace.add('F', "both Persisting after %s", after)
	if took := time.Since(start); took > s.worst {
		s.worst, s.worstAt = took, after
	}
}

// converged compares both copies with the provider, looking a few times
// while the last changes travel, and names the DNs that differ.
func (s *soak) converged() {
	var err error
	for range 100 {
		var want map[string]map[string][]string
		want, err = s.srv.Snapshot(context.Background(), slapdtest.PeopleDN)
		require.NoError(s.t, err)
		_, body := s.bin.get("/links/soak/ldif")
		entries, perr := readLDIF(strings.NewReader(body))
		require.NoError(s.t, perr)
		got := map[string]map[string][]string{}
		for _, e := range entries {
			got[e.DN] = ldapadapter.EntryAttributes(e)
		}
		lib := map[string]map[string][]string{}
		require.NoError(s.t, s.libDB.Each("lib", func(e *ldap.Entry) error { lib[e.DN] = ldapadapter.EntryAttributes(e); return nil }))
		err = errors.Join(wrapDiff("replink binary", realtarget.DiffTrees(want, got)), wrapDiff("library link", realtarget.DiffTrees(want, lib)))
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Logf("the life of each differing entry (W writer, F faults, L the library link's store calls):%s", s.trace.explain(err.Error()))
	s.t.Logf("library link history: %v", s.lib.History())
	s.t.Logf("binary warnings and errors, every process:\n%s", warnings(append(s.binLogs, s.bin.log())))
	if w := s.trace.dump(os.Getenv("REPLINK_SOAK_TRACE"), append(s.binLogs, s.bin.log())); w != "" {
		s.t.Log(w)
	}
	s.t.Fatalf("copies differ from the provider after the schedule: %v", err)
}

func wrapDiff(who string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", who, err)
}

func (s *soak) report() {
	names := make([]string, 0, len(s.survived))
	total := 0
	for n, c := range s.survived {
		names = append(names, fmt.Sprintf("%s %d", n, c))
		total += c
	}
	slices.Sort(names)
	reconnects := 0
	for _, tr := range s.lib.History() {
		if tr.Event == replink.RetryTimer {
			reconnects++
		}
	}
	_, metrics := s.bin.get("/metrics")
	s.t.Logf("soak: %d faults survived (%s); %d changes written and replicated to both copies; worst recovery %v (after %s) against a bound of %v; binary metrics since its last start: %s",
		total, strings.Join(names, ", "), s.writes.Load(), s.worst.Round(time.Millisecond), s.worstAt, recoveryBound, metricLine(metrics, "replink_link_reconnects_total"))
	require.LessOrEqual(s.t, s.worst, 2*recoveryBound)
}

// warnings are the lines of the binary's logs above info.
func warnings(logs []string) string {
	var b strings.Builder
	for i, l := range logs {
		fmt.Fprintf(&b, "process %d:\n", i+1)
		for _, line := range strings.Split(l, "\n") {
			if !strings.Contains(line, `"level":"INFO"`) && line != "" {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func metricLine(metrics, name string) string {
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, name) {
			return l
		}
	}
	return name + " absent"
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// staffDN is where the writer moves people to and from.
var staffDN = "ou=staff," + slapdtest.PeopleDN

func (s *soak) ensureStaff() {
	c, err := s.srv.Admin()
	if err != nil {
		return
	}
	defer c.Close()
	req := ldap.NewAddRequest(staffDN, nil)
	req.Attribute("objectClass", []string{"organizationalUnit"})
	req.Attribute("ou", []string{"staff"})
	c.Add(req)
}

// writer changes the provider about 20 times a second until ctx ends,
// through outages too (a failed write is simply not counted).
func (s *soak) writer(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	var people []string
	var c *ldap.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for k := 0; ctx.Err() == nil; k++ {
		time.Sleep(50 * time.Millisecond)
		if c == nil {
			var err error
			if c, err = s.srv.Admin(); err != nil {
				c = nil
				continue
			}
			c.SetTimeout(2 * time.Second)
			people = nil
		}
		if len(people) < 20 {
			res, err := c.Search(ldap.NewSearchRequest(slapdtest.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"1.1"}, nil))
			if err != nil {
				c.Close()
				c = nil
				continue
			}
			people = people[:0]
			for _, e := range res.Entries {
				people = append(people, e.DN)
			}
		}
		var err error
		var what string
		i := rng.IntN(max(1, len(people)))
		switch op := rng.IntN(100); {
		case op < 40 || len(people) == 0:
			dn := fmt.Sprintf("uid=w%d-%d,%s", rng.Uint32(), k, slapdtest.PeopleDN)
			err = c.Add(person(dn))
			what = fmt.Sprintf("add %q", dn)
			if err == nil {
				people = append(people, dn)
			}
		case op < 65:
			req := ldap.NewModifyRequest(people[i], nil)
			req.Replace("description", []string{fmt.Sprintf("changed %d", k)})
			err = c.Modify(req)
			what = fmt.Sprintf("modify %q", people[i])
		case op < 80:
			rdn := fmt.Sprintf("uid=r%d-%d", rng.Uint32(), k)
			err = c.ModifyDN(ldap.NewModifyDNRequest(people[i], rdn, true, ""))
			_, parent, _ := strings.Cut(people[i], ",")
			what = fmt.Sprintf("rename %q -> %q", people[i], rdn+","+parent)
			people = slices.Delete(people, i, i+1)
		case op < 90:
			parent := staffDN
			if strings.Contains(people[i], staffDN) {
				parent = slapdtest.PeopleDN
			}
			rdn, _, _ := strings.Cut(people[i], ",")
			err = c.ModifyDN(ldap.NewModifyDNRequest(people[i], rdn, true, parent))
			what = fmt.Sprintf("move %q -> %q", people[i], rdn+","+parent)
			people = slices.Delete(people, i, i+1)
		default:
			err = c.Del(ldap.NewDelRequest(people[i], nil))
			what = fmt.Sprintf("delete %q", people[i])
			people = slices.Delete(people, i, i+1)
		}
		s.trace.add('W', "%s: %v", what, err)
		if err == nil {
			s.writes.Add(1)
		} else if !ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultEntryAlreadyExists) {
			c.Close()
			c = nil
		}
	}
}

func person(dn string) *ldap.AddRequest {
	rdn, _, _ := strings.Cut(dn, ",")
	uid := strings.TrimPrefix(rdn, "uid=")
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{"Soak " + uid})
	req.Attribute("sn", []string{"Soak"})
	return req
}
