package sim

import (
	"sync/atomic"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// conn is one simulated connection. Fields other than lastRead are guarded
// by the provider's lock.
type conn struct {
	p            *Provider
	r            *Replica
	proc         *process
	sink         fsm.Sink
	last         time.Time // last traffic either way, for the idle-cutting middlebox
	lastRead     atomic.Int64
	persisting   bool
	closed, dead bool // closed by either side; dead: black-holed, nothing crosses
	handlerFault bool
}

func (c *conn) heard() { c.lastRead.Store(time.Now().UnixNano()) }

func (c *conn) LastRead() time.Time {
	if t := c.lastRead.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return c.last
}

// alive reports whether traffic can cross now, first letting an idle-cutting
// middlebox drop a flow that has been quiet too long.
func (c *conn) alive() bool {
	if c.closed || c.dead || c.p.blackout {
		return false
	}
	now := time.Now()
	if c.p.idleCut > 0 && now.Sub(c.last) >= c.p.idleCut {
		c.dead = true // cut silently, like most middleboxes
		return false
	}
	c.last = now
	return !c.p.hung
}

func (c *conn) report(ev replink.Event, cause error) { c.sink.Post(ev, cause) }

func (c *conn) Sync(req fsm.SyncRequest) {
	c.p.later(func() {
		if !c.alive() {
			return
		}
		c.heard()
		if err := c.r.refresh(c.p, req.DropCookie, c.takeHandlerFault()); err != nil {
			c.report(replink.Exception, err)
			return
		}
		c.persisting = req.Mode == replink.RefreshAndPersist
		c.report(replink.RefreshDone, nil)
	})
}

func (c *conn) takeHandlerFault() bool {
	f := c.handlerFault
	c.handlerFault = false
	return f
}

// push delivers one change to a persisting consumer; called under the lock.
func (c *conn) push(ch change) {
	if !c.persisting || !c.alive() {
		return
	}
	c.heard()
	if err := c.r.applyOne(ch, c.takeHandlerFault()); err != nil {
		c.report(replink.Exception, err)
	}
}

func (c *conn) Probe() {
	c.p.mu.Lock()
	ok := c.alive() // the request crosses, or not
	c.p.mu.Unlock()
	if !ok {
		return
	}
	c.p.later(func() {
		if !c.closed && !c.dead && !c.p.hung && !c.p.blackout {
			c.heard()
		}
	})
}

func (c *conn) Close(graceful bool) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.closed = true
	delete(c.p.conns, c)
	if graceful && !c.proc.dead {
		c.r.flush()
	}
}
