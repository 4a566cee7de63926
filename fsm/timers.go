package fsm

import "time"

// timerKind names the state-scoped timers. They are the only timers the
// engine has; entering a state arms its own and leaving it cancels all.
type timerKind uint8

const (
	connectTimer timerKind = iota + 1
	keepaliveTimer
	inactivityTimer
	retryTimer
	numTimers
)

// timers fire by posting a message to the machine's mailbox. Each kind has
// one reusable time.Timer, created on first use, and a deadline: a fire is
// honoured only if its kind is armed and its deadline has come, which makes a
// fire that raced with a cancel or a re-arm harmless without allocating a
// closure per arm.
type timers struct {
	post     func(message) bool
	t        [numTimers]*time.Timer
	deadline [numTimers]time.Time // zero: not armed
}

func (ts *timers) arm(k timerKind, d time.Duration) {
	ts.deadline[k] = time.Now().Add(d)
	if ts.t[k] == nil {
		ts.t[k] = time.AfterFunc(d, func() { ts.post(message{timer: k}) })
		return
	}
	ts.t[k].Reset(d)
}

func (ts *timers) stop(k timerKind) {
	if ts.t[k] != nil {
		ts.t[k].Stop()
	}
	ts.deadline[k] = time.Time{}
}

func (ts *timers) stopAll() {
	for k := timerKind(1); k < numTimers; k++ {
		ts.stop(k)
	}
}

// due reports whether a fire of kind k is still wanted, and disarms it if so.
func (ts *timers) due(k timerKind) bool {
	dl := ts.deadline[k]
	if dl.IsZero() || time.Now().Before(dl) {
		return false
	}
	ts.deadline[k] = time.Time{}
	return true
}
