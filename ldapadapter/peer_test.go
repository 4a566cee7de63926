package ldapadapter_test

import (
	"context"
	"net"
	"sync"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
)

// peer is a scripted LDAP provider at the far end of a net.Pipe, for
// byte-level tests in virtual time. It answers binds, base checks and probes
// as told, and lets a test write any frame it likes towards the consumer.
type peer struct {
	t      *testing.T
	conn   net.Conn
	out    chan []byte // one writer goroutine per connection: net.Pipe writers contend on a mutex, which synctest cannot wait out
	mu     sync.Mutex
	probes bool // answer WhoAmI probes
	onSync func(p *peer, id int64, cookie []byte)
	syncs  int
	done   chan struct{}
	// vendor is the root DSE's vendorName, or none; base is the base
	// entry's nsUniqueId (389-ds style) or entryUUID, by vendor, or none.
	vendor string
	base   uuid.UUID
}

func newPeer(t *testing.T) (*peer, func(context.Context, string, string) (net.Conn, error)) {
	p := &peer{t: t, probes: true, done: make(chan struct{})}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		client, server := net.Pipe()
		out := make(chan []byte, 4096)
		p.mu.Lock()
		if p.out != nil { // the previous connection's writer ends
			close(p.out)
		}
		p.conn, p.out = server, out
		p.mu.Unlock()
		go p.serve(server)
		go func() {
			for b := range out {
				if _, err := server.Write(b); err != nil {
					for range out { // drain until closed
					}
					return
				}
			}
		}()
		return client, nil
	}
	return p, dial
}

func (p *peer) serve(c net.Conn) {
	for {
		pkt, err := ber.ReadPacket(c)
		if err != nil {
			return
		}
		id := pkt.Children[0].Value.(int64)
		op := pkt.Children[1]
		switch op.Tag {
		case 0: // bind
			p.write(result(id, 1, 0))
		case 3: // search: base check, or the sync search
			if len(pkt.Children) < 3 {
				p.mu.Lock()
				vendor, base := p.vendor, p.base
				p.mu.Unlock()
				switch dn, _ := op.Children[0].Value.(string); {
				case dn == "" && vendor != "":
					p.write(plainEntry(id, "", "vendorName", vendor))
				case dn != "" && base != uuid.Nil && vendor == "389 Project":
					p.write(plainEntry(id, dn, "nsUniqueId", nsUniqueID(base)))
				case dn != "" && base != uuid.Nil:
					p.write(plainEntry(id, dn, "entryUUID", base.String()))
				}
				p.write(result(id, 5, 0))
				continue
			}
			var cookie []byte
			for _, ctl := range pkt.Children[2].Children {
				if len(ctl.Children) >= 2 {
					if v, err := ber.DecodePacketErr(ctl.Children[len(ctl.Children)-1].Data.Bytes()); err == nil {
						for _, f := range v.Children {
							if f.Tag == ber.TagOctetString {
								cookie = f.Data.Bytes()
							}
						}
					}
				}
			}
			p.mu.Lock()
			p.syncs++
			f := p.onSync
			p.mu.Unlock()
			if f != nil {
				go f(p, id, cookie)
			}
		case 23: // WhoAmI probe
			p.mu.Lock()
			answer := p.probes
			p.mu.Unlock()
			if answer {
				p.write(result(id, 24, 0))
			}
		}
	}
}

func (p *peer) setProbes(on bool) {
	p.mu.Lock()
	p.probes = on
	p.mu.Unlock()
}

func (p *peer) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out != nil {
		p.out <- b
	}
}

func (p *peer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close()
		close(p.out)
		p.conn, p.out = nil, nil
	}
}

func envelope(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	return ldapadapter.Envelope(id, op, controls...)
}

// result is an LDAPResult-shaped response with the given op tag and code.
func result(id int64, op ber.Tag, code int64, controls ...*ber.Packet) []byte {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, op, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	return envelope(id, r, controls...)
}

// plainEntry is a SearchResultEntry with one attribute, and the controls
// given (none for a plain search's answer).
func plainEntry(id int64, dn, attr, value string, controls ...*ber.Packet) []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, ""))
	vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, value, ""))
	a.AppendChild(vals)
	attrs.AppendChild(a)
	e.AppendChild(attrs)
	return envelope(id, e, controls...)
}

// syncEntry is a SearchResultEntry carrying a sync state control.
func syncEntry(id int64, dn string, u uuid.UUID, state int64, cookie string) []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	if state != 3 {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", ""))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
		a.AppendChild(vals)
		attrs.AppendChild(a)
	}
	e.AppendChild(attrs)
	return envelope(id, e, ldapadapter.SyncStateControl(state, u, cookie))
}

// refreshPresentDone is the Sync Info message ending a refresh in
// refreshAndPersist: refreshPresent with refreshDone TRUE.
func refreshPresentDone(id int64, cookie string) []byte { return refreshEnd(id, 2, cookie) }

// refreshDeleteDone ends it with refreshDelete instead, as slapd does after
// a refresh without a cookie.
func refreshDeleteDone(id int64, cookie string) []byte { return refreshEnd(id, 1, cookie) }

func refreshEnd(id int64, phase ber.Tag, cookie string) []byte {
	val := ber.Encode(ber.ClassContext, ber.TypeConstructed, phase, nil, "")
	val.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, ""))
	ir := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 25, nil, "")
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.4203.1.9.1.4", ""))
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, string(val.Bytes()), ""))
	return envelope(id, ir)
}
