package replink

// Event is something that happened to a link: a fact reported by the adapter,
// a timer that fired, or an admin's request. Events carry no data; the cause
// of a failure travels beside the event as an error.
type Event uint8

// The events. Names are the ones used in scenario files and diagrams.
const (
	// Start is an admin start: Stopped or Failed to Connecting.
	Start Event = iota + 1
	// Stop is an admin stop of one link (case 2): unbind, flush, Stopped.
	Stop
	// Shutdown is the consumer's own process going down (case 1).
	Shutdown
	// Reconfigure applies a new configuration: an active link reconnects with it.
	Reconfigure
	// Connected: dial, TLS and bind succeeded.
	Connected
	// ConnectFailed: the provider could not be reached or did not answer in
	// time; transient, retried with backoff.
	ConnectFailed
	// ConnectRefused: the provider answered and refused us for good (invalid
	// credentials, no such base DN); permanent, never retried on its own.
	ConnectRefused
	// RetriesExhausted: connect-failed once more than the retry budget allows.
	RetriesExhausted
	// RefreshDone: the refresh phase ended (syncDone or refreshDone=TRUE).
	RefreshDone
	// RefreshRequired: the provider answered e-syncRefreshRequired (4096);
	// the cookie is dropped and the refresh starts again.
	RefreshRequired
	// DisconnectNotice: an unsolicited Notice of Disconnection (case 3).
	DisconnectNotice
	// ConnectionClosed: EOF or reset on the socket (case 3, or a middlebox in case 4).
	ConnectionClosed
	// InactivityTimeout: no byte for the inactivity timeout (case 4, when no
	// keepalive keeps the connection busy).
	InactivityTimeout
	// KeepaliveMiss: a keepalive probe got no byte back in time (case 5).
	KeepaliveMiss
	// Exception: a protocol, decoding or handler error (case 6).
	Exception
	// RetryTimer: the backoff or refresh-interval timer fired.
	RetryTimer
	// DeletionsHeld: a refresh would delete more of the copy than the
	// deletion guard allows; nothing of its deletions was applied, and the
	// link waits for an admin to approve them or raise the limit.
	DeletionsHeld
)

var eventNames = [...]string{
	Start:             "start",
	Stop:              "stop",
	Shutdown:          "shutdown",
	Reconfigure:       "reconfigure",
	Connected:         "connected",
	ConnectFailed:     "connect-failed",
	ConnectRefused:    "connect-refused",
	RetriesExhausted:  "retries-exhausted",
	RefreshDone:       "refresh-done",
	RefreshRequired:   "refresh-required",
	DisconnectNotice:  "disconnect-notice",
	ConnectionClosed:  "connection-closed",
	InactivityTimeout: "inactivity-timeout",
	KeepaliveMiss:     "keepalive-miss",
	Exception:         "exception",
	RetryTimer:        "retry-timer",
	DeletionsHeld:     "deletions-held",
}

// Events lists every event in declaration order.
var Events = func() []Event {
	evs := make([]Event, 0, len(eventNames)-1)
	for e := Start; int(e) < len(eventNames); e++ {
		evs = append(evs, e)
	}
	return evs
}()

func (e Event) String() string {
	if e > 0 && int(e) < len(eventNames) {
		return eventNames[e]
	}
	return "Event(" + itoa(int(e)) + ")"
}

// Valid reports whether e is one of the declared events.
func (e Event) Valid() bool { return e > 0 && int(e) < len(eventNames) }

// ParseEvent returns the event named name (as printed by String).
func ParseEvent(name string) (Event, error) {
	for _, e := range Events {
		if eventNames[e] == name {
			return e, nil
		}
	}
	valid := make([]string, len(Events))
	for i, e := range Events {
		valid[i] = e.String()
	}
	return 0, &UnknownNameError{Kind: "event", Name: name, Valid: valid}
}

// MarshalText writes the event's name, so logs and JSON show it by name.
func (e Event) MarshalText() ([]byte, error) { return []byte(e.String()), nil }
