package ldapadapter_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// fastProvider answers a sync search on loopback TCP with entries encoded
// once, as fast as the socket takes them: what is measured is the
// consumer's path from the socket to the handler.
type fastProvider struct {
	ln      net.Listener
	entries int
	mu      sync.Mutex
	frames  map[int64][]byte // the whole refresh, by message ID
}

func newFastProvider(b *testing.B, entries int) *fastProvider {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &fastProvider{ln: ln, entries: entries, frames: map[int64][]byte{}}
	go p.serve()
	b.Cleanup(func() { ln.Close() })
	return p
}

func (p *fastProvider) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.conn(c)
	}
}

func (p *fastProvider) conn(c net.Conn) {
	defer c.Close()
	for {
		pkt, err := ber.ReadPacket(c)
		if err != nil {
			return
		}
		id := pkt.Children[0].Value.(int64)
		switch op := pkt.Children[1]; op.Tag {
		case 0:
			c.Write(result(id, 1, 0))
		case 3:
			if len(pkt.Children) < 3 { // the base check
				c.Write(result(id, 5, 0))
				continue
			}
			c.Write(p.refresh(id))
		case 23:
			c.Write(result(id, 24, 0))
		}
	}
}

// refresh is every entry, then a SearchResultDone with a Sync Done.
func (p *fastProvider) refresh(id int64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.frames[id]; ok {
		return f
	}
	var b []byte
	for i := range p.entries {
		b = append(b, benchEntry(id, i)...)
	}
	b = append(b, searchDone(id, "cookie-1", false)...)
	p.frames[id] = b
	return b
}

// benchEntry is an inetOrgPerson of about 200 bytes with its sync state.
func benchEntry(id int64, i int) []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	dn := fmt.Sprintf("uid=user%06d,ou=people,dc=example,dc=com", i)
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, kv := range [][2]string{
		{"objectClass", "inetOrgPerson"}, {"uid", fmt.Sprintf("user%06d", i)}, {"cn", fmt.Sprintf("User Number %d", i)},
		{"sn", "Number"}, {"mail", fmt.Sprintf("user%06d@example.com", i)},
	} {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, kv[0], ""))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, kv[1], ""))
		a.AppendChild(vals)
		attrs.AppendChild(a)
	}
	e.AppendChild(attrs)
	u := uuid.NewSHA1(uuid.NameSpaceOID, []byte(dn))
	return envelope(id, e, ldapadapter.SyncStateControl(1, u, ""))
}

// BenchmarkRefresh is one refreshOnly refresh of 10,000 entries over
// loopback TCP into a handler that does nothing: the consumer's whole
// inbound path (read, route, decode, dispatch). entries/s and
// allocs/entry are the figures to compare.
func BenchmarkRefresh(b *testing.B) {
	var applied int
	h := ldapadapter.HandlerFunc(func(context.Context, ldapadapter.Change) error { applied++; return nil })
	benchRefresh(b, func() (ldapadapter.Handler, func() int) {
		applied = 0
		return h, func() int { return applied }
	})
}

// BenchmarkRefreshIntoStore is the same refresh into a new bbolt store
// each time, as the daemon makes it: the inbound path, the store's
// encoding and its commits (each fsync'd).
func BenchmarkRefreshIntoStore(b *testing.B) {
	dir := b.TempDir()
	n := 0
	benchRefresh(b, func() (ldapadapter.Handler, func() int) {
		n++
		db, err := store.Open(filepath.Join(dir, fmt.Sprintf("r%d.db", n)), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		l, err := db.Link("bench", store.Content{BaseDN: "dc=example,dc=com", Scope: "sub", Filter: "(objectClass=*)"})
		if err != nil {
			b.Fatal(err)
		}
		return l, func() int { k, _ := l.Len(); return k }
	})
}

// benchRefresh measures refreshes of a fast provider's 10,000 entries,
// each into the handler fresh makes (outside the measure); applied says
// how many entries it holds after the refresh.
func benchRefresh(b *testing.B, fresh func() (h ldapadapter.Handler, applied func() int)) {
	const n = 10000
	p := newFastProvider(b, n)
	cfg := fsm.DefaultConfig()
	cfg.Mode, cfg.RefreshInterval = replink.RefreshOnly, time.Hour
	ctx := b.Context()
	refresh := func() {
		b.StopTimer()
		h, applied := fresh()
		l, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "bench", Machine: cfg, LDAP: ldapadapter.Config{
			URL: "ldap://" + p.ln.Addr().String(), BaseDN: "dc=example,dc=com", BindDN: "cn=r", Password: "pw",
			Handler: h, Logger: discard,
		}}, fsm.WithLogger(discard))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := l.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := l.WaitFor(ctx, replink.Polling); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		if got := applied(); got != n {
			b.Fatalf("applied %d of %d", got, n)
		}
		b.StartTimer()
	}
	refresh() // the provider encodes its answer once, outside the measure
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for b.Loop() {
		refresh()
	}
	el := b.Elapsed()
	runtime.ReadMemStats(&ms1)
	total := float64(b.N * n)
	b.ReportMetric(total/el.Seconds(), "entries/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/total, "allocs/entry")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/total, "B/entry")
}
