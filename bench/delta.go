package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// deltaRow is one consumer of the delta section.
type deltaRow struct {
	name, how string
	// live: consumer persisting while the modifies are made; catchUp:
	// consumer down while they are made, then started.
	liveBytes, catchUpBytes int64
	live, catchUp           time.Duration
	writes                  time.Duration // the live round's writes alone
}

// deltaSection makes one-attribute modifies on entries that carry an
// 8 KiB value and measures what whole-entry syncrepl, delta-syncrepl and
// OpenLDAP's delta consumer receive and how long they take.
func deltaSection(ctx context.Context, h *slapdtest.Harness, s settings) (rows []deltaRow) {
	srv := slapdtest.Start(h, slapdtest.WithAccesslog(""), slapdtest.WithPeople(s.deltaEntries))
	admin, err := srv.Admin()
	if err != nil {
		h.Fatal(err)
	}
	defer admin.Close()
	blob := make([]byte, 8<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	for i := range s.deltaEntries {
		m := ldap.NewModifyRequest(fmt.Sprintf("uid=p%d,%s", i, slapdtest.PeopleDN), nil)
		m.Replace("jpegPhoto", []string{string(blob)})
		if err := admin.Modify(m); err != nil {
			h.Fatal(err)
		}
	}
	round := 0
	modify := func() (last string, took time.Duration) {
		round++
		start := time.Now()
		for i := range s.deltaModifies {
			dn := fmt.Sprintf("uid=p%d,%s", i%s.deltaEntries, slapdtest.PeopleDN)
			last = fmt.Sprintf("round %d modify %d", round, i)
			m := ldap.NewModifyRequest(dn, nil)
			m.Replace("description", []string{last})
			if err := admin.Modify(m); err != nil {
				h.Fatal(err)
			}
		}
		return last, time.Since(start)
	}
	lastDN := fmt.Sprintf("uid=p%d,%s", (s.deltaModifies-1)%s.deltaEntries, slapdtest.PeopleDN)

	for _, logBase := range []string{"", slapdtest.LogDN} {
		row := deltaRow{name: "replink, whole-entry syncrepl", how: "a link of ou=people, refreshAndPersist"}
		if logBase != "" {
			row = deltaRow{name: "replink, delta-syncrepl", how: "the same link with LogBase cn=accesslog"}
		}
		p := slapdtest.NewProxy(h, srv.Addr())
		w := &watchStore{MemoryStore: ldapadapter.NewMemoryStore(), dn: lastDN}
		l, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "delta-bench", Machine: fsm.DefaultConfig(), LDAP: ldapadapter.Config{
			URL: p.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.PeopleDN, Handler: w, Logger: quiet, LogBase: logBase,
		}}, fsm.WithLogger(quiet))
		if err != nil {
			h.Fatal(err)
		}
		persist(ctx, h, l)
		// Live: the link persists while the modifies are made.
		before := p.Downstream()
		start := time.Now()
		last, took := modify()
		row.writes = took
		row.live = w.waitFor(h, last).Sub(start)
		row.liveBytes = p.Downstream() - before
		// Catch-up: the link is down while they are made.
		if err := l.Stop(ctx); err != nil {
			h.Fatal(err)
		}
		last, _ = modify()
		before = p.Downstream()
		w.reset()
		start = time.Now()
		persist(ctx, h, l)
		row.catchUp = w.waitFor(h, last).Sub(start)
		row.catchUpBytes = p.Downstream() - before
		if got := l.Fallbacks(); len(got) > 0 {
			h.Fatalf("%s fell back: %v", row.name, got)
		}
		l.Close()
		p.Close()
		rows = append(rows, row)
	}

	// OpenLDAP's delta consumer: a slapd with syncdata=accesslog.
	p := slapdtest.NewProxy(h, srv.Addr())
	c := slapdtest.Start(h, slapdtest.WithSyncrepl(syncreplDirective(p.URL(),
		`syncdata=accesslog logbase="cn=accesslog" logfilter="(&(objectClass=auditWriteObject)(reqResult=0))"`)))
	defer c.Kill()
	row := deltaRow{name: "OpenLDAP delta consumer", how: "a second slapd, syncrepl with syncdata=accesslog, its mdb on disk"}
	holds := func(value string) time.Time {
		deadline := time.Now().Add(5 * time.Minute)
		for time.Now().Before(deadline) {
			if descriptionOf(c, lastDN) == value {
				return time.Now()
			}
			time.Sleep(2 * time.Millisecond)
		}
		h.Fatalf("the OpenLDAP consumer never held %q", value)
		return time.Time{}
	}
	holds(descriptionOf(srv, lastDN))
	before := p.Downstream()
	start := time.Now()
	last, took := modify()
	row.writes = took
	row.live = holds(last).Sub(start)
	row.liveBytes = p.Downstream() - before
	c.Stop()
	last, _ = modify()
	before = p.Downstream()
	c.Launch()
	start = time.Now() // slapd accepts LDAP: its own start is not counted
	row.catchUp = holds(last).Sub(start)
	row.catchUpBytes = p.Downstream() - before
	rows = append(rows, row)
	return rows
}

// descriptionOf reads an entry's description, or "".
func descriptionOf(srv *slapdtest.Server, dn string) string {
	return strings.Join(valuesOf(srv, dn, "description"), " ")
}

// watchStore is a MemoryStore that notes when entry dn takes each
// description value.
type watchStore struct {
	*ldapadapter.MemoryStore
	dn   string
	mu   sync.Mutex
	seen map[string]time.Time
}

func (w *watchStore) Apply(ctx context.Context, c ldapadapter.Change) error {
	now := time.Now()
	if err := w.MemoryStore.Apply(ctx, c); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen == nil {
		w.seen = map[string]time.Time{}
	}
	if c.Op == ldapadapter.Upsert && ldapLower(c.DN) == ldapLower(w.dn) {
		w.seen[c.Entry.GetAttributeValue("description")] = now
	}
	return nil
}

func (w *watchStore) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.seen)
}

// waitFor returns when the entry took value.
func (w *watchStore) waitFor(h *slapdtest.Harness, value string) time.Time {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		at, ok := w.seen[value]
		w.mu.Unlock()
		if ok {
			return at
		}
		time.Sleep(time.Millisecond)
	}
	h.Fatalf("the copy never held %q", value)
	return time.Time{}
}
