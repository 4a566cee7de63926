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

// timers fire by posting a message to the machine's mailbox; a generation
// number per kind makes a fire that raced with a cancel harmless.
type timers struct {
	post func(message) bool
	t    [numTimers]*time.Timer
	gen  [numTimers]uint64
}

func (ts *timers) arm(k timerKind, d time.Duration) {
	ts.stop(k)
	ts.gen[k]++
	gen := ts.gen[k]
	ts.t[k] = time.AfterFunc(d, func() { ts.post(message{timer: k, gen: gen}) })
}

func (ts *timers) stop(k timerKind) {
	if ts.t[k] != nil {
		ts.t[k].Stop()
		ts.t[k] = nil
	}
	ts.gen[k]++
}

func (ts *timers) stopAll() {
	for k := timerKind(1); k < numTimers; k++ {
		ts.stop(k)
	}
}

// current reports whether a fire of kind k with generation gen is still wanted.
func (ts *timers) current(k timerKind, gen uint64) bool {
	return ts.t[k] != nil && ts.gen[k] == gen
}
