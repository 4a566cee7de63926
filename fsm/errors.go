package fsm

import (
	"errors"
	"strconv"
	"time"
)

// ErrClosed is returned by calls on a machine whose Close has run.
var ErrClosed = errors.New("replink: machine closed")

// ErrNotApplied wraps the context error of a Reconfigure whose caller gave
// up before the machine took the request: nothing of it was applied.
var ErrNotApplied = errors.New("replink: reconfiguration not applied")

// ErrUnknownEvent is returned for an event value outside replink.Events.
var ErrUnknownEvent = errors.New("replink: unknown event")

// The causes the machine attaches to the events it raises itself.
var (
	ErrConnectTimeout    = errors.New("connect timeout")
	ErrKeepaliveMiss     = errors.New("keepalive probe unanswered")
	ErrInactivityTimeout = errors.New("no data within the inactivity timeout")
	ErrRetriesExhausted  = errors.New("retry budget spent")
)

// SilenceError is the cause of keepalive-miss and inactivity-timeout: how
// long the provider had been silent when the machine gave up on it.
type SilenceError struct {
	Kind   error // ErrKeepaliveMiss or ErrInactivityTimeout
	Silent time.Duration
}

func (e *SilenceError) Error() string {
	return e.Kind.Error() + " (silent " + e.Silent.String() + ")"
}

func (e *SilenceError) Unwrap() error { return e.Kind }

// RetriesError is the cause of retries-exhausted; it keeps the last failure.
type RetriesError struct {
	Attempts int
	Last     error
}

func (e *RetriesError) Error() string {
	s := ErrRetriesExhausted.Error() + " after " + strconv.Itoa(e.Attempts) + " attempts"
	if e.Last != nil {
		s += ": " + e.Last.Error()
	}
	return s
}

func (e *RetriesError) Unwrap() []error { return []error{ErrRetriesExhausted, e.Last} }
