package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// Errors the simulated provider reports as causes.
var (
	ErrUnreachable        = errors.New("sim: provider unreachable")
	ErrInvalidCredentials = errors.New("sim: invalid credentials")
	ErrClosed             = errors.New("sim: connection closed by provider")
	ErrNotice             = errors.New("sim: notice of disconnection")
	ErrPersistEnded       = errors.New("sim: provider ended the persistent search")
	ErrProtocol           = errors.New("sim: malformed message from provider")
	ErrHandler            = errors.New("sim: handler failed to apply a change")
)

// Provider is the simulated directory server and the network in front of it.
// The zero value is not usable; call NewProvider.
type Provider struct {
	// Latency delays every answer: connect, refresh, probe.
	Latency time.Duration

	mu       sync.Mutex
	entries  map[string]string
	log      []change
	csn      int
	down     bool          // refuses connections (stopped, crashed, vanished)
	refuse   bool          // refuses our credentials
	hung     bool          // process stopped: accepts, never answers
	blackout bool          // network drops everything, both ways
	idleCut  time.Duration // middlebox drops flows idle this long
	conns    map[*conn]struct{}
}

type change struct {
	csn   int
	dn    string
	value string // "" means deleted
}

// NewProvider returns a running provider holding n entries.
func NewProvider(n int) *Provider {
	p := &Provider{Latency: time.Millisecond, entries: map[string]string{}, conns: map[*conn]struct{}{}}
	p.Write(n)
	return p
}

// Write makes n changes: adds, and every third one a modify of an older entry.
func (p *Provider) Write(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i < n; i++ {
		p.csn++
		dn := fmt.Sprintf("cn=e%d", p.csn)
		if p.csn%3 == 0 && p.csn > 1 {
			dn = fmt.Sprintf("cn=e%d", p.csn-1)
		}
		p.apply(change{csn: p.csn, dn: dn, value: fmt.Sprintf("v%d", p.csn)})
	}
}

// Delete removes the entry dn, if present.
func (p *Provider) Delete(dn string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.entries[dn]; ok {
		p.csn++
		p.apply(change{csn: p.csn, dn: dn})
	}
}

func (p *Provider) apply(c change) {
	if c.value == "" {
		delete(p.entries, c.dn)
	} else {
		p.entries[c.dn] = c.value
	}
	p.log = append(p.log, c)
	for cn := range p.conns {
		cn.push(c)
	}
}

// Entries is a copy of the provider's directory.
func (p *Provider) Entries() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.entries)
}

// Fault applies one abstract fault by name (as scenario files spell them).
func (p *Provider) Fault(name string, arg time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch name {
	case "provider-hang": // SIGSTOP: sockets stay open, nothing answers
		p.hung = true
	case "provider-resume":
		p.hung = false
	case "provider-stop", "provider-crash": // SIGTERM or SIGKILL: the kernel closes the sockets
		p.down = true
		p.closeAll(replink.ConnectionClosed, ErrClosed)
	case "provider-start":
		p.down, p.hung = false, false
	case "provider-notice": // a Notice of Disconnection, then close
		p.closeAll(replink.DisconnectNotice, ErrNotice)
	case "provider-end-persist": // SearchResultDone with Sync Done, then close
		p.closeAll(replink.ConnectionClosed, ErrPersistEnded)
	case "link-close", "link-reset": // a middlebox drops the flows; the provider stays up
		p.closeAll(replink.ConnectionClosed, ErrClosed)
	case "link-blackhole", "provider-vanish": // nothing crosses, no FIN: half-open
		p.blackout = true
		for c := range p.conns {
			c.dead = true
		}
	case "link-restore", "provider-return":
		p.blackout = false
	case "link-idle-cut":
		p.idleCut = arg
	case "protocol-error":
		for c := range p.conns {
			c.report(replink.Exception, ErrProtocol)
		}
	case "handler-error":
		for c := range p.conns {
			c.handlerFault = true
		}
	case "refresh-required": // the base is replaced by a new, empty one; no cookie can follow that
		p.entries = map[string]string{}
		p.log = nil
		p.csn++
		for c := range p.conns {
			c.report(replink.RefreshRequired, nil)
		}
	case "refuse-credentials":
		p.refuse = true
	case "accept-credentials":
		p.refuse = false
	default:
		return fmt.Errorf("sim: unknown fault %q", name)
	}
	return nil
}

func (p *Provider) closeAll(ev replink.Event, cause error) {
	for c := range p.conns {
		if !c.dead {
			c.report(ev, cause)
		}
		delete(p.conns, c)
		c.closed = true
	}
}

// Adapter connects links to p and applies what they receive to r.
func (p *Provider) Adapter(r *Replica) fsm.Adapter { return adapter{p: p, r: r, proc: &process{}} }

type adapter struct {
	p    *Provider
	r    *Replica
	proc *process
}

// process stands for the consumer process an adapter lives in; once dead
// (crashed) its connections close without a flush.
type process struct{ dead bool }

func (a adapter) Connect(ctx context.Context, s fsm.Sink) fsm.Conn {
	c := &conn{p: a.p, r: a.r, proc: a.proc, sink: s, last: time.Now()}
	a.p.later(func() {
		switch {
		case c.closed || a.proc.dead:
		case a.p.hung || a.p.blackout:
			// SYN or bind unanswered: the engine's connect timeout decides.
		case a.p.down:
			s.Post(replink.ConnectFailed, ErrUnreachable)
		case a.p.refuse:
			s.Post(replink.ConnectRefused, ErrInvalidCredentials)
		default:
			a.p.conns[c] = struct{}{}
			c.heard()
			s.Post(replink.Connected, nil)
		}
	})
	return c
}

// later runs f under the provider's lock after the configured latency.
func (p *Provider) later(f func()) {
	time.AfterFunc(p.Latency, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		f()
	})
}
