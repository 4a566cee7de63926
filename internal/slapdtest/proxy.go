package slapdtest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Proxy stands between consumer and provider like a middlebox, on loopback.
// It can close or reset every flow, black-hole traffic (nothing crosses, no
// FIN), cut flows idle for too long silently, inject a Notice of
// Disconnection or raw bytes towards the consumer.
type Proxy struct {
	ln       net.Listener
	upstream string

	mu        sync.Mutex
	flows     map[*flow]struct{}
	blackhole bool
	idleCut   time.Duration
	closed    bool
	wg        sync.WaitGroup
	stop      chan struct{}
	down      atomic.Int64 // bytes forwarded from the provider to consumers
}

// Downstream counts the bytes forwarded from the provider to consumers:
// what a consumer behind the proxy received on the wire (LDAP messages,
// no TCP/IP headers).
func (p *Proxy) Downstream() int64 { return p.down.Load() }

type flow struct {
	client, server *net.TCPConn
	last           time.Time // last byte either way
	dead           bool      // black-holed: bytes are dropped
	syncID         int64     // message ID of the consumer's latest sync search
}

// NewProxy listens on a free loopback port and forwards to upstream.
func NewProxy(t TB, upstream string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, upstream: upstream, flows: map[*flow]struct{}{}, stop: make(chan struct{})}
	p.wg.Add(2)
	go p.accept()
	go p.janitor()
	t.Cleanup(p.Close)
	return p
}

// Addr is the address consumers dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is ldap://Addr.
func (p *Proxy) URL() string { return "ldap://" + p.Addr() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		bh := p.blackhole
		p.mu.Unlock()
		f := &flow{client: c.(*net.TCPConn), last: time.Now(), dead: bh}
		if !bh {
			s, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
			if err != nil {
				c.Close() // provider down: the consumer sees the refusal as a close
				continue
			}
			f.server = s.(*net.TCPConn)
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			f.closeBoth()
			return
		}
		p.flows[f] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.pipe(f, f.client, f.server)
		if f.server != nil {
			p.wg.Add(1)
			go p.pipe(f, f.server, f.client)
		}
	}
}

// pipe copies src to dst until either side closes, dropping bytes while the
// flow is black-holed.
func (p *Proxy) pipe(f *flow, src, dst *net.TCPConn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if src == f.client {
				if id, ok := syncSearchID(buf[:n]); ok {
					f.syncID = id
				}
			}
			if !f.dead && p.idleCut > 0 && time.Since(f.last) >= p.idleCut {
				f.dead = true
			}
			dead := f.dead || p.blackhole
			if !dead {
				f.last = time.Now()
			}
			p.mu.Unlock()
			if !dead && dst != nil {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					err = werr
				}
				if src == f.server {
					p.down.Add(int64(n))
				}
			}
		}
		if err != nil {
			p.mu.Lock()
			dead := f.dead
			p.mu.Unlock()
			if !dead { // a dead flow stays half-open, like behind a real middlebox
				f.closeBoth()
			}
			return
		}
	}
}

// janitor cuts idle flows at the moment they pass the idle limit.
func (p *Proxy) janitor() {
	defer p.wg.Done()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
			p.mu.Lock()
			for f := range p.flows {
				if p.idleCut > 0 && !f.dead && time.Since(f.last) >= p.idleCut {
					f.dead = true
				}
			}
			p.mu.Unlock()
		}
	}
}

func (f *flow) closeBoth() {
	f.client.Close()
	if f.server != nil {
		f.server.Close()
	}
}

func (p *Proxy) take() []*flow {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*flow, 0, len(p.flows))
	for f := range p.flows {
		out = append(out, f)
		delete(p.flows, f)
	}
	return out
}

// CloseAll ends every flow with a FIN both ways.
func (p *Proxy) CloseAll() {
	for _, f := range p.take() {
		f.closeBoth()
	}
}

// ResetAll ends every flow with a RST towards the consumer.
func (p *Proxy) ResetAll() {
	for _, f := range p.take() {
		f.client.SetLinger(0)
		f.closeBoth()
	}
}

// Blackhole drops every byte both ways, on existing and new flows, without
// closing anything; Blackhole(false) lets new flows through again.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blackhole = on
	if on {
		for f := range p.flows {
			f.dead = true
		}
	}
}

// Sever silently kills the flows that exist now, as a path that dies
// would: their bytes are dropped, no FIN or RST is sent; new flows pass.
func (p *Proxy) Sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for f := range p.flows {
		f.dead = true
	}
}

// IdleCut makes the proxy silently black-hole any flow idle for d (0: never).
func (p *Proxy) IdleCut(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idleCut = d
	for f := range p.flows {
		f.last = time.Now()
	}
}

// Notice sends a Notice of Disconnection to every consumer, then closes.
func (p *Proxy) Notice() {
	msg := NoticeOfDisconnection()
	for _, f := range p.take() {
		f.client.Write(msg)
		f.closeBoth()
	}
}

// EndPersist ends every consumer's persistent search as a provider may
// (RFC 4533 §3.4): a SearchResultDone with a Sync Done control whose
// refreshDeletes is FALSE, on a connection that stays open. The provider
// is not told; the consumer is the one to close.
func (p *Proxy) EndPersist() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for f := range p.flows {
		if f.syncID != 0 {
			f.client.Write(SyncDoneResult(f.syncID))
		}
	}
}

// oidSyncRequest marks the consumer's sync search on the wire.
var oidSyncRequest = []byte("1.3.6.1.4.1.4203.1.9.1.1")

// syncSearchID finds the message ID of a sync search request in a chunk
// the consumer wrote. go-ldap writes each request whole, so on loopback a
// request starts its chunk.
func syncSearchID(b []byte) (int64, bool) {
	if !bytes.Contains(b, oidSyncRequest) {
		return 0, false
	}
	p, err := ber.DecodePacketErr(b)
	if err != nil || len(p.Children) == 0 {
		return 0, false
	}
	id, ok := p.Children[0].Value.(int64)
	return id, ok
}

// SyncDoneResult encodes a successful SearchResultDone for message id with
// a Sync Done control that has no cookie and refreshDeletes FALSE.
func SyncDoneResult(id int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Message")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 5, nil, "Search Result Done")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnosticMessage"))
	p.AppendChild(r)
	value := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "syncDoneValue")
	ctl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "1.3.6.1.4.1.4203.1.9.1.3", "Sync Done"))
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(value.Bytes()), "controlValue"))
	ctls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
	ctls.AppendChild(ctl)
	p.AppendChild(ctls)
	return p.Bytes()
}

// Inject writes raw bytes to every consumer, as if the provider sent them.
func (p *Proxy) Inject(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for f := range p.flows {
		f.client.Write(b)
	}
}

// Close stops the proxy and every flow, and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	p.ln.Close()
	for _, f := range p.take() {
		f.closeBoth()
	}
	p.wg.Wait()
}

// NoticeOfDisconnection encodes the unsolicited notification of RFC 4511
// 4.4.1: message ID 0, resultCode unavailable (52), and its OID.
func NoticeOfDisconnection() []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Message")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "MessageID"))
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 24, nil, "Extended Response")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 52, "resultCode"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "server shutting down", "diagnosticMessage"))
	r.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, "1.3.6.1.4.1.1466.20036", "responseName"))
	p.AppendChild(r)
	return p.Bytes()
}
