package replink

import (
	"errors"
	"fmt"
)

// Transition is one row of the table: in state From, event Event moves the
// link to To. A row with Only set applies to that sync mode alone; that is the
// table's only guard, and it is why one (From, Event) pair may appear twice.
type Transition struct {
	From  State
	Event Event
	To    State
	Case  Case
	Only  *Mode // nil: both modes
	Why   string
}

// Applies reports whether the row is in force for a link in mode m.
func (t Transition) Applies(m Mode) bool { return t.Only == nil || *t.Only == m }

var (
	onlyPersist = ptr(RefreshAndPersist)
	onlyRefresh = ptr(RefreshOnly)
)

func ptr(m Mode) *Mode { return &m }

// active are the states in which the link is doing something an admin can stop.
var active = []State{Connecting, Refreshing, Persisting, Polling, Failed}

// connected are the states that hold a bound connection.
var connected = []State{Refreshing, Persisting}

// Table is the link state machine. The engine, the diagrams, the generated
// docs and the conformance checks all read it; nothing else defines a
// transition.
var Table = buildTable()

func buildTable() []Transition {
	t := []Transition{
		{Stopped, Start, Connecting, CaseAdmin, nil, "admin or process start"},
		{Stopped, Stop, Stopped, CaseAdmin, nil, "already stopped: idempotent"},
		{Stopped, Shutdown, Stopped, CaseShutdown, nil, "already stopped: idempotent"},
		{Stopped, Reconfigure, Stopped, CaseAdmin, nil, "stored for the next start"},

		{Connecting, Connected, Refreshing, CaseNone, nil, "bound: start the sync search"},
		{Connecting, ConnectFailed, Polling, CaseCleanDisconnect, nil, "provider unreachable: poll with backoff"},
		{Connecting, ConnectRefused, Failed, CaseNone, nil, "refused for good: wait for an admin"},
		{Connecting, RetriesExhausted, Failed, CaseNone, nil, "retry budget spent: wait for an admin"},
		{Connecting, Exception, Failed, CaseException, nil, "error on our side while connecting"},

		{Refreshing, RefreshDone, Persisting, CaseNone, onlyPersist, "refresh complete: persist"},
		{Refreshing, RefreshDone, Polling, CaseNone, onlyRefresh, "refresh complete: disconnect until the refresh interval"},
		{Refreshing, RefreshRequired, Refreshing, CaseNone, nil, "e-syncRefreshRequired: drop the cookie, refresh again"},
		{Persisting, RefreshRequired, Refreshing, CaseNone, nil, "e-syncRefreshRequired: drop the cookie, refresh again"},
		{Refreshing, DeletionsHeld, Failed, CaseNone, nil, "the refresh would delete too much of the copy: wait for an admin"},

		{Polling, RetryTimer, Connecting, CaseCleanDisconnect, nil, "poll the provider again"},
		{Failed, RetryTimer, Connecting, CaseException, nil, "transient failure: retry after backoff"},
		{Failed, Start, Connecting, CaseAdmin, nil, "admin start after a permanent failure"},
	}
	for _, s := range connected {
		t = append(t,
			Transition{s, DisconnectNotice, Polling, CaseCleanDisconnect, nil, "notice of disconnection"},
			Transition{s, ConnectionClosed, Polling, CaseCleanDisconnect, nil, "FIN or RST"},
			Transition{s, InactivityTimeout, Polling, CaseInactivity, nil, "nothing read for the inactivity timeout"},
			Transition{s, KeepaliveMiss, Polling, CaseBrutalDisconnect, nil, "keepalive probe unanswered"},
			Transition{s, Exception, Failed, CaseException, nil, "protocol or handler error: disconnect, retry"},
		)
	}
	for _, s := range active {
		t = append(t,
			Transition{s, Stop, Stopped, CaseAdmin, nil, "admin stop: unbind, flush the cookie"},
			Transition{s, Shutdown, Stopped, CaseShutdown, nil, "process shutdown: unbind, flush the cookie"},
			Transition{s, Reconfigure, Connecting, CaseAdmin, nil, "reconnect with the new configuration"},
		)
	}
	return t
}

// Lookup returns the row for (from, ev) in mode m.
func Lookup(from State, ev Event, m Mode) (Transition, error) {
	for _, t := range Table {
		if t.From == from && t.Event == ev && t.Applies(m) {
			return t, nil
		}
	}
	return Transition{}, &TransitionError{From: from, Event: ev, Mode: m}
}

// ValidateTable checks a table the way looplab/fsm does not: every state and
// event known, no duplicate (From, Event) row for a mode, every state
// reachable from Stopped in some mode and able to return to it in every mode
// that reaches it, every event used.
func ValidateTable(table []Transition) error {
	var errs []error
	usedEvents := map[Event]bool{}
	reachable := map[State]bool{}
	for _, m := range []Mode{RefreshAndPersist, RefreshOnly} {
		seen := map[[2]int]int{}
		adj := map[State][]State{}
		for i, t := range table {
			if int(t.From) >= len(stateNames) || int(t.To) >= len(stateNames) || !t.Event.Valid() {
				errs = append(errs, fmt.Errorf("row %d: unknown state or event: %v", i, t))
				continue
			}
			if !t.Applies(m) {
				continue
			}
			usedEvents[t.Event] = true
			k := [2]int{int(t.From), int(t.Event)}
			if j, dup := seen[k]; dup {
				errs = append(errs, fmt.Errorf("rows %d and %d: duplicate %s on %s in %s", j, i, t.From, t.Event, m))
			}
			seen[k] = i
			adj[t.From] = append(adj[t.From], t.To)
		}
		for s := range reach(Stopped, adj) {
			reachable[s] = true
			if !reach(s, adj)[Stopped] {
				errs = append(errs, fmt.Errorf("%s: state %s cannot return to Stopped", m, s))
			}
		}
	}
	for _, s := range States {
		if !reachable[s] {
			errs = append(errs, fmt.Errorf("state %s unreachable from Stopped", s))
		}
	}
	for _, e := range Events {
		if !usedEvents[e] {
			errs = append(errs, fmt.Errorf("event %s appears in no row", e))
		}
	}
	return errors.Join(errs...)
}

func reach(from State, adj map[State][]State) map[State]bool {
	seen := map[State]bool{from: true}
	stack := []State{from}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, n := range adj[s] {
			if !seen[n] {
				seen[n] = true
				stack = append(stack, n)
			}
		}
	}
	return seen
}
