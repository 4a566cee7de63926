package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// refreshRow is one consumer's initial refresh.
type refreshRow struct {
	name     string
	identity string // what the consumer binds as: replicator (slapd evaluates an ACL) or rootdn (it does not)
	command  string
	took     time.Duration // best of the trials; 0 when not measured
	note     string
	vs       int    // index of the row that is this one's limit
	peakHeap uint64 // bytes: the consumer's Go heap at its peak, when measured
	peakLive uint64 // bytes: the most any collection found alive
}

// The identities a refresh is read as. Bound as cn=replicator, slapd
// evaluates an ACL for every entry and is itself the bottleneck; bound as
// its rootdn it evaluates none, so the consumer's own cost shows.
const (
	asReplicator = "replicator (ACL-evaluating provider)"
	asRootDN     = "rootdn (fast provider)"
)

// bigRefresh is the size above which the section runs only the rows
// against the fast provider: the others take minutes there and show
// nothing new.
const bigRefresh = 100000

// refreshSection times an initial refresh of the same provider by each
// consumer, best of s.trials, in one run.
func refreshSection(ctx context.Context, h *slapdtest.Harness, s settings) []refreshRow {
	srv := slapdtest.Start(h, slapdtest.WithPeople(s.entries))
	var rows []refreshRow
	if s.entries <= bigRefresh && s.identity != "rootdn" {
		rows = replicatorRows(ctx, h, srv, s)
	}
	if s.identity == "replicator" {
		return rows
	}
	return append(rows, rootDNRows(ctx, h, srv, s, len(rows))...)
}

// replicatorRows are the consumers bound as cn=replicator, against
// ldapsearch bound as the same.
func replicatorRows(ctx context.Context, h *slapdtest.Harness, srv *slapdtest.Server, s settings) []refreshRow {
	best := func(f func() time.Duration) time.Duration {
		var b time.Duration
		for range s.trials {
			if d := f(); b == 0 || d < b {
				b = d
			}
		}
		return b
	}
	rows := []refreshRow{{
		name:     "ldapsearch -E sync=ro (the limit)",
		identity: asReplicator,
		command:  "ldapsearch -x -H URL -D cn=replicator,dc=example,dc=com -w PW -b ou=people,dc=example,dc=com -E sync=ro > /dev/null",
		took:     best(func() time.Duration { return ldapsearchRefresh(h, srv) }),
	}}
	for _, c := range []struct {
		name string
		h    func() ldapadapter.Handler
	}{
		{"replink, handler that does nothing", func() ldapadapter.Handler { return noop{} }},
		{"replink into the memory store", func() ldapadapter.Handler { return ldapadapter.NewMemoryStore() }},
		{"replink into the bbolt store", func() ldapadapter.Handler {
			db, err := store.Open(filepath.Join(h.TempDir(), "r.db"), nil)
			if err != nil {
				h.Fatal(err)
			}
			h.Cleanup(func() { db.Close() })
			l, err := db.Link("bench", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
			if err != nil {
				h.Fatal(err)
			}
			return l
		}},
	} {
		rows = append(rows, refreshRow{
			name:     c.name,
			identity: asReplicator,
			command:  "ldapadapter.Link, refreshOnly, from Start to refresh-done",
			took:     best(func() time.Duration { return replinkRefresh(ctx, h, srv, c.h()) }),
		})
	}
	// The slow consumers run once: their figure is far from the others'.
	rows = append(rows, refreshRow{
		name:     "OpenLDAP consumer (slapd with syncrepl)",
		identity: asReplicator,
		command:  "a second slapd with a syncrepl directive (its mdb database on disk), from its start until its contextCSN equals the provider's; one trial",
		took:     openldapRefresh(h, srv, s.entries),
	})
	py := refreshRow{name: "python-ldap SyncreplConsumer", identity: asReplicator, command: "/usr/bin/python3 with Debian's python3-ldap, refreshOnly, handlers that count; one trial"}
	if d, err := pythonRefresh(h, srv, s.entries, 1); err != nil {
		py.note = err.Error()
	} else {
		py.took = d
	}
	return append(rows, py)
}

// rootDNRows are the consumers bound as the rootdn, so that slapd is not
// the bottleneck, against ldapsearch bound as the rootdn; first is the
// index the first of them will have in the section. Trials alternate, so
// a disturbance of the machine falls on all of them alike.
func rootDNRows(ctx context.Context, h *slapdtest.Harness, srv *slapdtest.Server, s settings, first int) []refreshRow {
	bin := buildDaemon(h)
	root := refreshRow{
		name:     "ldapsearch -E sync=ro as the rootdn (the limit)",
		identity: asRootDN,
		command:  "ldapsearch -x -H URL -D cn=admin,dc=example,dc=com -w PW -b ou=people,dc=example,dc=com -E sync=ro > /dev/null",
		vs:       first, // itself
	}
	counted := refreshRow{
		name:     "replink, HandlerFunc that counts",
		identity: asRootDN,
		command:  "ldapadapter.Link on the public API: a HandlerFunc that counts, refreshAndPersist, default settings; from Start to Persisting",
		vs:       first,
	}
	refresh := refreshRow{
		name:     "replink run into bbolt: the refresh",
		identity: asRootDN,
		command:  "the built binary: replink run --url URL --bind-dn cn=admin,dc=example,dc=com --password-file F --base ou=people,dc=example,dc=com --store F.db --log-format json, no feed; from its connected transition to its refresh-done transition, as its log stamps them",
		vs:       first,
	}
	whole := refreshRow{
		name:     "replink run into bbolt: start to Persisting",
		identity: asRootDN,
		command:  "the same run, from the process start to its transition to Persisting (process start, bind, base check, refresh, commit)",
		vs:       first,
	}
	base := refreshRow{
		name:     "replink run into bbolt: the refresh, baseline tree",
		identity: asRootDN,
		command:  "the same as the refresh row, with the daemon built from the -baseline tree " + s.baseline + ", run in the same trials",
		vs:       first,
	}
	var baseBin string
	if s.baseline != "" {
		baseBin = buildDaemonIn(h, s.baseline)
	}
	keep := func(r *refreshRow, d time.Duration) {
		if r.took == 0 || d < r.took {
			r.took = d
		}
	}
	pct := func(limit, d time.Duration) float64 { return 100 * limit.Seconds() / d.Seconds() }
	for i := range s.trials {
		limit := ldapsearchAs(h, srv, slapdtest.AdminDN, slapdtest.AdminPW)
		keep(&root, limit)
		c := countingRefresh(ctx, h, srv, s.entries)
		keep(&counted, c)
		d := daemonRefresh(h, srv, bin, s.entries)
		keep(&refresh, d.refresh)
		keep(&whole, d.persisting)
		for _, r := range []*refreshRow{&refresh, &whole} {
			r.peakHeap, r.peakLive = max(r.peakHeap, d.peakHeap), max(r.peakLive, d.peakLive)
		}
		// Each trial on stderr, so that a median can be taken: on a
		// shared machine the best of a few says little.
		line := fmt.Sprintf("trial %d: ldapsearch %v; counting %v (%.0f %%); daemon refresh %v (%.0f %%), start to Persisting %v",
			i+1, limit.Round(time.Millisecond), c.Round(time.Millisecond), pct(limit, c),
			d.refresh.Round(time.Millisecond), pct(limit, d.refresh), d.persisting.Round(time.Millisecond))
		if baseBin != "" {
			b := daemonRefresh(h, srv, baseBin, s.entries)
			keep(&base, b.refresh)
			base.peakHeap, base.peakLive = max(base.peakHeap, b.peakHeap), max(base.peakLive, b.peakLive)
			line += fmt.Sprintf("; baseline daemon refresh %v (%.0f %%)", b.refresh.Round(time.Millisecond), pct(limit, b.refresh))
		}
		fmt.Fprintln(os.Stderr, line)
	}
	if baseBin != "" {
		return []refreshRow{root, counted, refresh, whole, base}
	}
	return []refreshRow{root, counted, refresh, whole}
}

// noop is a Handler that does nothing: the consumer's own cost.
type noop struct{}

func (noop) Apply(context.Context, ldapadapter.Change) error { return nil }
func (noop) Known(context.Context) ([]uuid.UUID, error)      { return nil, nil }

func ldapsearchRefresh(h *slapdtest.Harness, srv *slapdtest.Server) time.Duration {
	return ldapsearchAs(h, srv, slapdtest.ReplicatorDN, slapdtest.ReplicatorPW)
}

// ldapsearchAs times ldapsearch -E sync=ro of ou=people bound as dn.
func ldapsearchAs(h *slapdtest.Harness, srv *slapdtest.Server, dn, pw string) time.Duration {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		h.Fatal(err)
	}
	defer null.Close()
	cmd := exec.Command("ldapsearch", "-x", "-H", srv.URL(), "-D", dn, "-w", pw,
		"-b", slapdtest.PeopleDN, "-E", "sync=ro")
	cmd.Stdout = null
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		h.Fatalf("ldapsearch: %v: %s", err, stderr.String())
	}
	return time.Since(start)
}

func replinkRefresh(ctx context.Context, h *slapdtest.Harness, srv *slapdtest.Server, handler ldapadapter.Handler) time.Duration {
	m := fsm.DefaultConfig()
	m.Mode, m.RefreshInterval = replink.RefreshOnly, time.Hour
	return timedLink(ctx, h, ldapadapter.LinkConfig{Name: "bench", Machine: m, LDAP: ldapadapter.Config{
		URL: srv.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
		BaseDN: slapdtest.PeopleDN, Handler: handler, Logger: quiet,
	}}, replink.Polling)
}

// countingRefresh is the refresh of a consumer built on the public API: a
// HandlerFunc that counts, refreshAndPersist, default settings, bound as
// the rootdn; timed from Start until the link persists.
func countingRefresh(ctx context.Context, h *slapdtest.Harness, srv *slapdtest.Server, entries int) time.Duration {
	var n atomic.Int64
	handler := ldapadapter.HandlerFunc(func(context.Context, ldapadapter.Change) error { n.Add(1); return nil })
	took := timedLink(ctx, h, ldapadapter.LinkConfig{Name: "bench", Machine: fsm.DefaultConfig(), LDAP: ldapadapter.Config{
		URL: srv.URL(), BindDN: slapdtest.AdminDN, Password: slapdtest.AdminPW,
		BaseDN: slapdtest.PeopleDN, Handler: handler, Logger: quiet,
	}}, replink.Persisting)
	if got := n.Load(); got < int64(entries) {
		h.Fatalf("the handler saw %d changes of %d", got, entries)
	}
	return took
}

// timedLink starts a link of cfg and times it from Start until it enters
// done, the state that follows its refresh (Polling for refreshOnly,
// Persisting for refreshAndPersist); Failed, or 5 minutes, stops the run.
func timedLink(ctx context.Context, h *slapdtest.Harness, cfg ldapadapter.LinkConfig, done replink.State) time.Duration {
	l, err := ldapadapter.NewLink(cfg, fsm.WithLogger(quiet))
	if err != nil {
		h.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := l.Start(ctx); err != nil {
		h.Fatal(err)
	}
	if st, err := l.WaitFor(ctx, done, replink.Failed); err != nil || st != done {
		h.Fatalf("refresh ended in %s: %v %v", st, err, l.History())
	}
	return time.Since(start)
}

// openldapRefresh starts an OpenLDAP consumer of srv and times it until its
// contextCSN equals the provider's, then checks it holds every entry.
func openldapRefresh(h *slapdtest.Harness, srv *slapdtest.Server, entries int) time.Duration {
	want := contextCSN(h, srv, slapdtest.BaseDN)
	start := time.Now()
	c := slapdtest.Start(h, slapdtest.WithSyncrepl(syncreplDirective(srv.URL(), "")))
	defer c.Kill()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if got := contextCSN(h, c, slapdtest.BaseDN); got != "" && got >= want {
			break
		}
		if time.Now().After(deadline) {
			h.Fatal("the OpenLDAP consumer never caught up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if n := count(h, c); n != entries+1 {
		h.Fatalf("the OpenLDAP consumer holds %d entries of %d", n, entries+1)
	}
	return took
}

// syncreplDirective is an OpenLDAP consumer of ou=people at url; extra adds
// parameters (keepalive=...).
func syncreplDirective(url, extra string) string {
	return fmt.Sprintf(`syncrepl rid=001 provider=%s bindmethod=simple binddn="%s" credentials=%s searchbase="%s" type=refreshAndPersist retry="1 +" %s`,
		url, slapdtest.ReplicatorDN, slapdtest.ReplicatorPW, slapdtest.PeopleDN, extra)
}

func contextCSN(h *slapdtest.Harness, srv *slapdtest.Server, base string) string {
	return strings.Join(valuesOf(srv, base, "contextCSN"), " ")
}

// valuesOf reads one attribute of the entry dn as the root DN, or nothing.
func valuesOf(srv *slapdtest.Server, dn, attr string) []string {
	c, err := srv.Admin()
	if err != nil {
		return nil
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) == 0 {
		return nil
	}
	return res.Entries[0].GetAttributeValues(attr)
}

func count(h *slapdtest.Harness, srv *slapdtest.Server) int {
	c, err := srv.Admin()
	if err != nil {
		h.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(slapdtest.PeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		h.Fatal(err)
	}
	return len(res.Entries)
}

// pythonConsumer is python-ldap's SyncreplConsumer with handlers that only
// count; it prints the entries seen and the seconds the refresh took.
const pythonConsumer = `
import sys, time, ldap, ldap.syncrepl
from ldap.ldapobject import SimpleLDAPObject
class Consumer(SimpleLDAPObject, ldap.syncrepl.SyncreplConsumer):
    def __init__(self, *args, **kw):
        SimpleLDAPObject.__init__(self, *args, **kw)
        self.n, self.cookie = 0, None
    def syncrepl_get_cookie(self): return self.cookie
    def syncrepl_set_cookie(self, cookie): self.cookie = cookie
    def syncrepl_entry(self, dn, attrs, uuid): self.n += 1
    def syncrepl_delete(self, uuids): pass
    def syncrepl_present(self, uuids, refreshDeletes=False): pass
    def syncrepl_refreshdone(self): pass
url, dn, pw, base = sys.argv[1:5]
c = Consumer(url)
c.simple_bind_s(dn, pw)
start = time.monotonic()
msgid = c.syncrepl_search(base, ldap.SCOPE_SUBTREE, mode='refreshOnly', filterstr='(objectClass=*)')
while c.syncrepl_poll(all=1, msgid=msgid):
    pass
print(c.n, time.monotonic() - start)
`

func pythonRefresh(h *slapdtest.Harness, srv *slapdtest.Server, entries, trials int) (time.Duration, error) {
	if err := exec.Command("/usr/bin/python3", "-c", "import ldap.syncrepl").Run(); err != nil {
		return 0, fmt.Errorf("not measured: python3-ldap is not installed (apt-get install python3-ldap)")
	}
	script := filepath.Join(h.TempDir(), "consumer.py")
	if err := os.WriteFile(script, []byte(pythonConsumer), 0o600); err != nil {
		return 0, err
	}
	var best time.Duration
	for range trials {
		out, err := exec.Command("/usr/bin/python3", script, srv.URL(), slapdtest.ReplicatorDN, slapdtest.ReplicatorPW, slapdtest.PeopleDN).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("python-ldap: %v: %s", err, out)
		}
		f := strings.Fields(string(out))
		if len(f) != 2 {
			return 0, fmt.Errorf("python-ldap printed %q", out)
		}
		n, _ := strconv.Atoi(f[0])
		secs, _ := strconv.ParseFloat(f[1], 64)
		if n != entries+1 {
			return 0, fmt.Errorf("python-ldap saw %d entries of %d", n, entries+1)
		}
		if d := time.Duration(secs * float64(time.Second)); best == 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// slapdVersion is what slapd says of itself.
func slapdVersion() string {
	out, _ := exec.Command(slapdtest.Binary(), "-VV").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "slapd") {
			l = strings.TrimPrefix(strings.TrimSpace(l), "@(#) $OpenLDAP:")
			return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(l), "$"))
		}
	}
	return "unknown"
}

// buildDaemon builds cmd/replink once for the run, as users run it.
func buildDaemon(h *slapdtest.Harness) string {
	return buildDaemonIn(h, ".")
}

// buildDaemonIn builds cmd/replink of the source tree in dir.
func buildDaemonIn(h *slapdtest.Harness, dir string) string {
	bin := filepath.Join(h.TempDir(), "replink")
	if out, err := exec.Command("go", "build", "-C", dir, "-o", bin, "github.com/replink/replink/cmd/replink").CombinedOutput(); err != nil {
		h.Fatalf("go build ./cmd/replink in %s: %v: %s", dir, err, out)
	}
	return bin
}

// daemonRun is what one run of the daemon took.
type daemonRun struct {
	refresh    time.Duration // connected → refresh-done, from its log
	persisting time.Duration // process start → Persisting
	peakHeap   uint64        // bytes: the largest heap any GC of the run began with
	peakLive   uint64        // bytes: the most any GC of the run found alive
}

// gcHeap finds the heap sizes of a GODEBUG=gctrace=1 line: "4->5->1 MB".
var gcHeap = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB`)

// daemonRefresh runs the built daemon, bound as the rootdn, into a new
// bbolt file with no feed, until it persists; then stops it with SIGTERM
// and checks that the file holds every entry. Its peak heap is read from
// the runtime's own GC trace, which prints the heap at the start of every
// collection (the heap is largest then) and what it found alive.
func daemonRefresh(h *slapdtest.Harness, srv *slapdtest.Server, bin string, entries int) daemonRun {
	dir := h.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(slapdtest.AdminPW), 0o600); err != nil {
		h.Fatal(err)
	}
	db := filepath.Join(dir, "replica.db")
	cmd := exec.Command(bin, "run", "--url", srv.URL(), "--bind-dn", slapdtest.AdminDN, "--password-file", pw,
		"--base", slapdtest.PeopleDN, "--store", db, "--log-format", "json", "--view", "off")
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		h.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		h.Fatal(err)
	}
	hung := time.AfterFunc(10*time.Minute, func() { cmd.Process.Kill() }) // its log then ends, and so does the loop below
	defer hung.Stop()
	var run daemonRun
	var connected, done, persisting time.Time
	var logged []string
	sc := bufio.NewScanner(stderr)
	for persisting.IsZero() && sc.Scan() {
		line := sc.Text()
		if m := gcHeap.FindStringSubmatch(line); m != nil {
			mb, _ := strconv.ParseUint(m[1], 10, 64)
			live, _ := strconv.ParseUint(m[3], 10, 64)
			run.peakHeap, run.peakLive = max(run.peakHeap, mb<<20), max(run.peakLive, live<<20)
			continue
		}
		logged = append(logged, line)
		var l struct {
			Time      time.Time
			Msg       string
			To, Event string
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "transition" {
			continue
		}
		switch {
		case l.Event == "connected" && connected.IsZero():
			connected = l.Time
		case l.Event == "refresh-done" && done.IsZero():
			done = l.Time
		}
		if l.To == "Persisting" {
			persisting = l.Time
		}
		if l.To == "Failed" {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, stderr) // the rest of its log, until it exits
	if err := cmd.Wait(); err != nil || persisting.IsZero() || done.IsZero() || connected.IsZero() {
		h.Fatalf("replink run: %v; never persisted: %s", err, strings.Join(logged, "\n"))
	}
	run.refresh, run.persisting = done.Sub(connected), persisting.Sub(start)
	if n := storedEntries(h, db); n != entries+1 {
		h.Fatalf("replink run stored %d entries of %d", n, entries+1)
	}
	return run
}

// storedEntries counts the entries of the daemon's link in the file.
func storedEntries(h *slapdtest.Harness, path string) int {
	db, err := store.Open(path, &store.Options{ReadOnly: true})
	if err != nil {
		h.Fatal(err)
	}
	defer db.Close()
	n := 0
	if err := db.Each("default", func(*ldap.Entry) error { n++; return nil }); err != nil {
		h.Fatal(err)
	}
	return n
}
