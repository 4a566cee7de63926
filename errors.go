package replink

import (
	"errors"
	"strconv"
	"strings"
)

// UnknownNameError reports a state, event or mode name that does not exist.
type UnknownNameError struct {
	Kind  string // "state", "event" or "mode"
	Name  string
	Valid []string // the names that exist, for the message
}

func (e *UnknownNameError) Error() string {
	msg := "replink: unknown " + e.Kind + " " + strconv.Quote(e.Name)
	if len(e.Valid) > 0 {
		msg += " (want one of " + strings.Join(e.Valid, ", ") + ")"
	}
	return msg
}

// ErrNoTransition is wrapped by errors about a (state, event) pair the table lacks.
var ErrNoTransition = errors.New("no transition")

// TransitionError reports an event that the table does not allow in a state.
type TransitionError struct {
	From  State
	Event Event
	Mode  Mode
}

func (e *TransitionError) Error() string {
	return "replink: no transition from " + e.From.String() + " on " + e.Event.String() + " (" + e.Mode.String() + ")"
}

func (e *TransitionError) Unwrap() error { return ErrNoTransition }

func itoa(i int) string { return strconv.Itoa(i) }
