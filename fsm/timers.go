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

// timers keep a deadline per kind behind one time.Timer, set for the
// earliest of them, whose channel the machine's goroutine selects on with
// its mailbox. A fire wakes that goroutine and nothing else: no goroutine
// is started per fire, no lock is taken, and ten thousand idle links cost
// one runtime timer each. Cancelling only clears a deadline; a fire that
// finds nothing due just re-arms for the next one.
type timers struct {
	t        *time.Timer // nil until first used
	at       time.Time   // when t fires; zero: not set
	deadline [numTimers]time.Time
}

func (ts *timers) arm(k timerKind, d time.Duration) { ts.armOnGrid(k, d, 0) }

// armOnGrid arms k for d, rounded up to the next multiple of grid in wall
// time (none if grid is 0). Timers of many machines that round to the same
// instant fire together, in one pass of the runtime's timers: a thread
// woken once serves them all, instead of one wake-up each.
func (ts *timers) armOnGrid(k timerKind, d, grid time.Duration) {
	dl := time.Now().Add(d)
	if grid > 0 {
		if r := time.Duration(dl.UnixNano() % int64(grid)); r != 0 {
			dl = dl.Add(grid - r)
		}
	}
	ts.deadline[k] = dl
	ts.schedule(dl)
}

// schedule makes t fire at dl unless it already fires no later.
func (ts *timers) schedule(dl time.Time) {
	if !ts.at.IsZero() && !dl.Before(ts.at) {
		return
	}
	ts.at = dl
	if ts.t == nil {
		ts.t = time.NewTimer(time.Until(dl))
		return
	}
	ts.t.Reset(time.Until(dl))
}

func (ts *timers) stop(k timerKind) { ts.deadline[k] = time.Time{} }

func (ts *timers) stopAll() {
	ts.deadline = [numTimers]time.Time{}
	if ts.t != nil {
		ts.t.Stop()
	}
	ts.at = time.Time{}
}

// c is the channel that fires at the earliest deadline, nil if none is set.
func (ts *timers) c() <-chan time.Time {
	if ts.at.IsZero() {
		return nil
	}
	return ts.t.C
}

// fired is called when c fired: it returns the kinds whose deadline has
// come, as a bit set, and sets t for the earliest deadline still ahead.
func (ts *timers) fired(now time.Time) (due uint8) {
	ts.at = time.Time{}
	var next time.Time
	for k := timerKind(1); k < numTimers; k++ {
		switch dl := ts.deadline[k]; {
		case dl.IsZero():
		case !now.Before(dl):
			due |= 1 << k
		case next.IsZero() || dl.Before(next):
			next = dl
		}
	}
	if !next.IsZero() {
		ts.schedule(next)
	}
	return due
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
