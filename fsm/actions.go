package fsm

import (
	"math/rand/v2"
	"time"

	"github.com/replink/replink"
)

// exit runs when the machine leaves tr.From. Every timer belongs to a state,
// so all of them stop here. The connection survives only a move into a
// connected state (connected, refresh-required, refresh-done in
// refreshAndPersist); every other exit drops it.
func (m *Machine) exit(tr Transition) {
	m.timers.stopAll()
	m.probe, m.lead = time.Time{}, 0
	if m.conn == nil || tr.To.Connected() {
		return
	}
	// A connection that ends well is unbound: an admin's stop, shutdown or
	// reconfiguration, and a refreshOnly cycle that completed. Any other
	// end is a loss, which the adapter may answer by trying another provider.
	graceful := tr.Event == replink.Stop || tr.Event == replink.Shutdown || tr.Event == replink.Reconfigure || tr.Event == replink.RefreshDone
	m.conn.Close(graceful)
	m.conn = nil
	m.epoch++ // whatever the old connection still posts is stale
}

// enter runs when the machine arrives in tr.To, self-loops included.
func (m *Machine) enter(tr Transition) {
	switch tr.To {
	case replink.Connecting:
		m.cause = nil
		m.epoch++
		m.conn = m.adapter.Connect(m.ctx, sink{m: m, epoch: m.epoch})
		m.timers.arm(connectTimer, m.cfg.ConnectTimeout)

	case replink.Refreshing:
		m.conn.Sync(SyncRequest{Mode: m.cfg.Mode, DropCookie: tr.Event == replink.RefreshRequired})
		m.armLiveness()

	case replink.Persisting:
		m.retries = 0 // refreshed successfully: the next loss starts backoff afresh
		if p, ok := m.conn.(Persister); ok {
			p.Persisting()
		}
		m.armLiveness()

	case replink.Polling:
		m.cause = tr.Cause
		if tr.Event == replink.RefreshDone { // refreshOnly cycle complete
			m.retries = 0
			m.timers.arm(retryTimer, m.cfg.RefreshInterval)
			return
		}
		m.armRetry()

	case replink.Failed:
		m.cause = tr.Cause
		if tr.Event == replink.ConnectRefused || tr.Event == replink.RetriesExhausted || tr.Event == replink.DeletionsHeld {
			return // permanent: only an admin start leaves Failed
		}
		m.armRetry()

	case replink.Stopped:
		m.retries = 0
	}
}

func (m *Machine) armRetry() {
	m.timers.arm(retryTimer, m.cfg.Backoff.Delay(m.retries, m.rnd))
	m.retries++
}

func (m *Machine) armLiveness() {
	if m.cfg.KeepaliveInterval > 0 {
		m.timers.armOnGrid(keepaliveTimer, m.untilProbe(0), m.keepaliveGrid())
	}
	if m.cfg.InactivityTimeout > 0 {
		m.timers.arm(inactivityTimer, m.cfg.InactivityTimeout)
	}
}

// onTimer turns a timer fire into an event, or re-arms the timer when the
// connection turned out not to be idle after all.
func (m *Machine) onTimer(k timerKind) {
	if !m.timers.due(k) {
		return
	}
	switch k {
	case connectTimer:
		m.step(replink.ConnectFailed, ErrConnectTimeout)
	case retryTimer:
		m.step(replink.RetryTimer, nil)
	case inactivityTimer:
		idle := time.Since(m.conn.LastRead())
		if idle < m.cfg.InactivityTimeout {
			m.timers.arm(inactivityTimer, m.cfg.InactivityTimeout-idle)
			return
		}
		m.step(replink.InactivityTimeout, &SilenceError{Kind: ErrInactivityTimeout, Silent: idle})
	case keepaliveTimer:
		m.keepalive()
	}
}

// keepalive implements the probe cycle: once the connection has been
// silent for KeepaliveInterval less a lead, a probe goes out on it; if no
// byte at all arrives by KeepaliveTimeout after the probe was due, the
// provider is gone. Any byte counts as life.
//
// The deadline is counted from the last byte, not from whenever the probe
// happened to leave: a probe sent late (its timer was served late, or the
// check that found the previous probe answered came after the next one was
// due) waits that much less, though never less than half the timeout. The
// lead, drawn per probe between 1/16 and 1/8 of the interval, leaves that
// much room for a machine that runs late, among thousands of links on a
// busy process, to still detect within KeepaliveInterval + KeepaliveTimeout
// of the last byte; it also spreads the probes of links that came up
// together, and lets one timer fire per cycle both find the answer and
// send the next probe.
func (m *Machine) keepalive() {
	last := m.conn.LastRead()
	now := time.Now()
	if !m.probe.IsZero() {
		if last.Before(m.probe) {
			m.step(replink.KeepaliveMiss, &SilenceError{Kind: ErrKeepaliveMiss, Silent: now.Sub(last)})
			return
		}
		m.probe = time.Time{} // answered: back to watching for silence
	}
	late := -m.untilProbe(now.Sub(last))
	if late < 0 {
		m.timers.armOnGrid(keepaliveTimer, -late, m.keepaliveGrid())
		return
	}
	m.probe, m.lead = now, 0
	m.conn.Probe()
	m.timers.armOnGrid(keepaliveTimer, max(m.cfg.KeepaliveTimeout-late, m.cfg.KeepaliveTimeout/2), m.keepaliveGrid())
}

// keepaliveGrid is what keepalive deadlines are rounded up to: 10 ms, or
// 1/64 of the interval if that is less, always well inside the lead (at
// least 1/16 of it), so the rounding costs no detection its bound. The
// probes of thousands of links, spread by their leads, then go out in
// batches, one per grid step, and cost a thread wake-up per batch rather
// than per probe.
func (m *Machine) keepaliveGrid() time.Duration {
	return min(10*time.Millisecond, m.cfg.KeepaliveInterval/64)
}

// untilProbe is how long a connection silent for idle waits before its
// next probe, its lead drawn if it is not yet.
func (m *Machine) untilProbe(idle time.Duration) time.Duration {
	if m.lead == 0 {
		m.lead = m.cfg.KeepaliveInterval/16 + time.Duration(m.float64()*float64(m.cfg.KeepaliveInterval/16))
	}
	return m.cfg.KeepaliveInterval - m.lead - idle
}

// float64 draws from the machine's source of jitter, or the global one.
func (m *Machine) float64() float64 {
	if m.rnd != nil {
		return m.rnd.Float64()
	}
	return rand.Float64()
}

// sink is the Sink handed to one connection; its epoch lets the machine
// discard what a dropped connection still reports.
type sink struct {
	m     *Machine
	epoch uint64
}

func (s sink) Post(ev replink.Event, cause error) {
	s.m.enqueue(message{ev: ev, cause: cause, epoch: s.epoch})
}
