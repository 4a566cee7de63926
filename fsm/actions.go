package fsm

import (
	"time"

	"github.com/replink/replink"
)

// exit runs when the machine leaves tr.From. Every timer belongs to a state,
// so all of them stop here. The connection survives only a move into a
// connected state (connected, refresh-required, refresh-done in
// refreshAndPersist); every other exit drops it.
func (m *Machine) exit(tr Transition) {
	m.timers.stopAll()
	m.probe = time.Time{}
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
		m.timers.arm(keepaliveTimer, m.cfg.KeepaliveInterval)
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

// keepalive implements the probe cycle: after KeepaliveInterval of silence a
// probe goes out on the same connection; if no byte at all arrives within
// KeepaliveTimeout, the provider is gone. Any byte read counts as life.
func (m *Machine) keepalive() {
	last := m.conn.LastRead()
	now := time.Now()
	if !m.probe.IsZero() {
		if last.After(m.probe) || last.Equal(m.probe) {
			m.probe = time.Time{} // answered: back to watching for silence
		} else {
			m.step(replink.KeepaliveMiss, &SilenceError{Kind: ErrKeepaliveMiss, Silent: now.Sub(last)})
			return
		}
	}
	if idle := now.Sub(last); idle < m.cfg.KeepaliveInterval {
		m.timers.arm(keepaliveTimer, m.cfg.KeepaliveInterval-idle)
		return
	}
	m.probe = now
	m.conn.Probe()
	m.timers.arm(keepaliveTimer, m.cfg.KeepaliveTimeout)
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
