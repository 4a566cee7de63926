package replink

import "slices"

// State is where a provider link stands. The zero value is Stopped.
type State uint8

// The link states. Each comment says what is true of the link, which timers the
// engine runs there, and how the state is left.
const (
	// Stopped: no connection, no timer. The link starts and ends here; an
	// admin start (or reconfigure, which is stored for the next start) leaves
	// it. A clean shutdown unbinds and flushes the cookie on the way in.
	Stopped State = iota

	// Connecting: a dial, TLS handshake and bind are under way. Timer: connect
	// timeout, which reports connect-failed, so a provider that accepts TCP but
	// never answers the bind cannot hold the link here. Left on connected,
	// connect-failed (to Polling), connect-refused or retries-exhausted (to
	// Failed), exception, stop, shutdown or reconfigure.
	Connecting

	// Refreshing: bound, the sync search runs its refresh phase and entries
	// stream in. Timers: keepalive (probe after an idle interval, miss after
	// the probe timeout) and inactivity. Left on refresh-done, or on any loss
	// of the connection.
	Refreshing

	// Persisting: refreshAndPersist only. The refresh is complete and the
	// provider pushes changes as they happen. Timers: keepalive and
	// inactivity, the only way a silent provider is ever noticed (cases 4, 5).
	Persisting

	// Polling: no connection; a timer will connect again. Entered after the
	// provider went away (cases 3, 4, 5: retry timer is the backoff) or after
	// a successful refreshOnly cycle (retry timer is the refresh interval).
	Polling

	// Failed: an error on our side or a refusal; the link keeps the cause.
	// A transient cause (exception, case 6) arms the retry timer with backoff;
	// a permanent one (invalid credentials, no such base DN, retry budget
	// spent) arms nothing and waits for an admin start, so a provider that
	// refuses us is never hammered.
	Failed
)

// States lists every state in declaration order.
var States = []State{Stopped, Connecting, Refreshing, Persisting, Polling, Failed}

var stateNames = [...]string{"Stopped", "Connecting", "Refreshing", "Persisting", "Polling", "Failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + itoa(int(s)) + ")"
}

// Connected reports whether the link holds a bound connection in s.
func (s State) Connected() bool { return s == Refreshing || s == Persisting }

// ParseState returns the state named name (as printed by String).
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return 0, &UnknownNameError{Kind: "state", Name: name, Valid: slices.Clone(stateNames[:])}
}

// MarshalText writes the state's name, so logs and JSON show it by name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
