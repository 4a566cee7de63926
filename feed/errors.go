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
	// ErrFailed is wrapped by a Writer's call that failed to write or
	// fsync a file, or to repair it afterwards. A file feed does not stay
	// failed: the next call first cuts the file back to the end of the
	// last fsynced line (never trusting bytes an fsync did not confirm,
	// as Postgres learnt to), so it works again once the disk does.
	ErrFailed = errors.New("feed: a write or fsync of the feed failed")
	// ErrDropped is returned by the Sync of a link whose lines were cut by
	// such a repair: that link's commit must fail, so that its changes
	// come again and are written again (see Writer.SyncFor).
	ErrDropped = errors.New("feed: lines not yet durable were dropped after a failed write; their changes must come again")
	// ErrStalled is wrapped by a stream Writer's Write, Sync or Close
	// when the reader has taken nothing for the stall timeout
	// (WithStallTimeout): a full pipe whose reader stopped reading.
	ErrStalled = errors.New("feed: the stream's reader is not reading")
	// ErrReaderGone is wrapped by every call of a stream Writer after a
	// write found the reader gone (EPIPE: the read end of the pipe was
	// closed). Nothing more can be written to that stream.
	ErrReaderGone = errors.New("feed: the stream's reader is gone (broken pipe)")
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
