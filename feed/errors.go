package feed

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is wrapped when a line is not a feed record.
	ErrMalformed = errors.New("feed: malformed line")
	// ErrTornLine is wrapped by Replay when the input ends in a partial
	// line: a write cut by a crash, or one still under way.
	ErrTornLine = errors.New("feed: torn last line")
	// ErrFailed is wrapped by every call of a Writer after a write or an
	// fsync failed: lines not yet synced may be lost or torn, so nothing
	// more is written until the feed is opened again (which cuts a torn
	// tail). Postgres treats a failed fsync the same way.
	ErrFailed = errors.New("feed: an earlier write or fsync failed")
	// ErrClosed is returned by a Writer after Close.
	ErrClosed = errors.New("feed: closed")
)

// LineError says which line of a feed Replay could not read.
type LineError struct {
	Line int // from 1
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("feed line %d: %v", e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }
