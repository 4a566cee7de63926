// Package wiresim is a scripted LDAP provider at the far end of a
// net.Pipe, for driving the real ldapadapter.Link byte for byte. It answers
// what a link asks at connect (bind, root DSE, base entry), keepalive
// probes, abandon and unbind by itself, and hands every RFC 4533 sync
// search to a driver, which writes whatever sync messages it chooses.
//
// Everything blocks on channels, so it works inside a testing/synctest
// bubble: one writer goroutine per connection, because net.Pipe writers
// contend on a mutex, which synctest cannot wait out.
package wiresim

import (
	"context"
	"net"
	"strings"
	"sync"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/google/uuid"
)

// Provider is what the simulated server says about itself.
type Provider struct {
	// Vendor is the root DSE's vendorName; empty hides the root DSE.
	Vendor string
	// BaseDN is the base entry's DN as the provider spells it.
	BaseDN string
	// BaseID is the base entry's identity, shown as nsUniqueId if
	// NsUniqueID, else as entryUUID; zero hides it.
	BaseID     uuid.UUID
	NsUniqueID bool
	// Listing, if set, answers a plain search of the base's subtree or
	// level (a consumer listing the content's UUIDs) with these entries'
	// identities; unset, such a search is refused (unwillingToPerform),
	// as a provider would whose limits forbid it.
	Listing func() []uuid.UUID
}

// Search is one sync search a consumer started.
type Search struct {
	ID     int64
	Cookie []byte // nil: none
	// Persist is refreshAndPersist; otherwise refreshOnly.
	Persist bool
	c       *conn
}

// Send writes frames to the consumer in order; false once the connection
// or the search is gone.
func (s *Search) Send(frames ...[]byte) bool {
	for _, f := range frames {
		if !s.c.write(f) {
			return false
		}
	}
	return !s.c.abandoned(s.ID)
}

// Alive reports whether the search can still be answered.
func (s *Search) Alive() bool { return !s.c.isClosed() && !s.c.abandoned(s.ID) }

// Drop closes the connection under the search, as a provider that goes away.
func (s *Search) Drop() { s.c.close() }

// Server accepts connections through Dial.
type Server struct {
	mu       sync.Mutex
	provider Provider
	conns    []*conn
	wg       sync.WaitGroup
	// Searches receives every sync search, in order.
	Searches chan *Search
}

// New returns a server that behaves as p says.
func New(p Provider) *Server {
	return &Server{provider: p, Searches: make(chan *Search, 64)}
}

// SetProvider changes what the server says from the next request on.
func (s *Server) SetProvider(p Provider) {
	s.mu.Lock()
	s.provider = p
	s.mu.Unlock()
}

func (s *Server) current() Provider {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.provider
}

// Dial is an ldapadapter.Config.DialContext.
func (s *Server) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	c := &conn{s: s, nc: server, out: make(chan []byte, 1024), gone: make(chan struct{}), aband: map[int64]bool{}}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	s.wg.Add(2)
	go func() { defer s.wg.Done(); c.serve() }()
	go func() { defer s.wg.Done(); c.writer() }()
	return client, nil
}

// Close drops every connection and waits for their goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
}

type conn struct {
	s    *Server
	nc   net.Conn
	out  chan []byte
	gone chan struct{}

	mu     sync.Mutex
	closed bool
	aband  map[int64]bool
}

func (c *conn) write(b []byte) bool {
	select {
	case c.out <- b:
		return true
	case <-c.gone:
		return false
	}
}

func (c *conn) writer() {
	for {
		select {
		case b := <-c.out:
			if _, err := c.nc.Write(b); err != nil {
				c.close()
				return
			}
		case <-c.gone:
			return
		}
	}
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.gone)
		c.nc.Close()
	}
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *conn) abandoned(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aband[id]
}

func (c *conn) serve() {
	defer c.close()
	for {
		pkt, err := ber.ReadPacket(c.nc)
		if err != nil || len(pkt.Children) < 2 {
			return
		}
		id, _ := pkt.Children[0].Value.(int64)
		op := pkt.Children[1]
		switch op.Tag {
		case 0: // bind
			c.write(Result(id, 1, 0, ""))
		case 2: // unbind
			return
		case 3:
			c.search(id, pkt, op)
		case 16: // abandon
			if n, ok := op.Value.(int64); ok {
				c.mu.Lock()
				c.aband[n] = true
				c.mu.Unlock()
			} else if v, err := ber.ParseInt64(op.Data.Bytes()); err == nil {
				c.mu.Lock()
				c.aband[v] = true
				c.mu.Unlock()
			}
		case 23: // extended: WhoAmI and anything else gets success
			c.write(Result(id, 24, 0, ""))
		}
	}
}

func (c *conn) search(id int64, pkt, op *ber.Packet) {
	if s := syncRequest(pkt); s != nil {
		s.ID, s.c = id, c
		select {
		case c.s.Searches <- s:
		case <-c.gone:
		}
		return
	}
	p := c.s.current()
	base, _ := op.Children[0].Value.(string)
	switch {
	case base == "":
		if p.Vendor != "" {
			vals := []Attr{{Name: "vendorName", Values: [][]byte{[]byte(p.Vendor)}}}
			if p.Vendor == "389 Project" {
				vals = append(vals, Attr{Name: "vendorVersion", Values: [][]byte{[]byte("389-Directory/2.3.4 B2023.000.0000")}})
			}
			c.write(Entry(id, "", vals))
		}
		c.write(Result(id, 5, 0, ""))
	case sameDN(base, p.BaseDN) && searchScope(op) != 0:
		if p.Listing == nil {
			c.write(Result(id, 5, 53, "unwilling to list the content"))
			return
		}
		for _, u := range p.Listing() {
			attr := Attr{Name: "entryUUID", Values: [][]byte{[]byte(u.String())}}
			if p.NsUniqueID {
				attr = Attr{Name: "nsUniqueId", Values: [][]byte{[]byte(NsUniqueID(u))}}
			}
			c.write(Entry(id, "entryUUID="+u.String()+","+p.BaseDN, []Attr{attr}))
		}
		c.write(Result(id, 5, 0, ""))
	case sameDN(base, p.BaseDN):
		var attrs []Attr
		switch {
		case p.BaseID == uuid.Nil:
		case p.NsUniqueID:
			attrs = []Attr{{Name: "nsUniqueId", Values: [][]byte{[]byte(NsUniqueID(p.BaseID))}}}
		default:
			attrs = []Attr{{Name: "entryUUID", Values: [][]byte{[]byte(p.BaseID.String())}}}
		}
		c.write(Entry(id, p.BaseDN, attrs))
		c.write(Result(id, 5, 0, ""))
	default:
		c.write(Result(id, 5, 32, "no such object"))
	}
}

// searchScope is a search request's scope (0 base, 1 level, 2 subtree).
func searchScope(op *ber.Packet) int64 {
	if len(op.Children) < 2 {
		return 0
	}
	v, _ := op.Children[1].Value.(int64)
	return v
}

// sameDN compares two DNs as a directory does for this simulator's names:
// attribute types and values case-insensitively, spaces after commas ignored.
func sameDN(a, b string) bool {
	norm := func(s string) string {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			parts[i] = strings.TrimSpace(p)
		}
		return strings.ToLower(strings.Join(parts, ","))
	}
	return norm(a) == norm(b)
}

// NsUniqueID spells u as 389-ds does: four groups of eight hex digits.
func NsUniqueID(u uuid.UUID) string {
	h := strings.ReplaceAll(u.String(), "-", "")
	return h[0:8] + "-" + h[8:16] + "-" + h[16:24] + "-" + h[24:32]
}

// syncRequest returns the search's Sync Request, or nil if it has none.
func syncRequest(pkt *ber.Packet) *Search {
	if len(pkt.Children) < 3 {
		return nil
	}
	for _, ctl := range pkt.Children[2].Children {
		if len(ctl.Children) < 2 {
			continue
		}
		if oid, _ := ctl.Children[0].Value.(string); oid != OIDSyncRequest {
			continue
		}
		s := &Search{}
		v, err := ber.DecodePacketErr(ctl.Children[len(ctl.Children)-1].Data.Bytes())
		if err != nil {
			return s
		}
		for _, f := range v.Children {
			switch f.Tag {
			case ber.TagEnumerated:
				mode, _ := ber.ParseInt64(f.Data.Bytes())
				s.Persist = mode == 3
			case ber.TagOctetString:
				s.Cookie = append([]byte{}, f.Data.Bytes()...)
			}
		}
		return s
	}
	return nil
}
