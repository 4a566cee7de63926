package fsm

import (
	"time"

	"github.com/replink/replink"
)

// Transition is one move of one machine, as observers and History see it.
type Transition struct {
	Link  string
	From  replink.State
	To    replink.State
	Event replink.Event
	Case  replink.Case
	Cause error // nil for admin and success events
	Time  time.Time
	// Peer names the provider of the connection the transition concerns:
	// the one lost, or the one being connected to. Empty when the adapter
	// does not say (its Conn has no Peer method).
	Peer string
}

func (t Transition) String() string {
	s := t.Time.Format("15:04:05.000") + " " + t.Link + ": " + t.From.String() + " -> " + t.To.String() + " on " + t.Event.String()
	if t.Peer != "" {
		s += " [" + t.Peer + "]"
	}
	if t.Cause != nil {
		s += " (" + t.Cause.Error() + ")"
	}
	return s
}
