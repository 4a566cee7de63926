package store

import (
	"errors"
	"fmt"
)

var (
	// ErrContentMismatch is wrapped when a link is opened for content other
	// than the content its copy in the file was made from.
	ErrContentMismatch = errors.New("store holds another content for this link")
	// ErrUnknownLink is returned for a link the file does not hold.
	ErrUnknownLink = errors.New("no such link in the store")
	// ErrCommitFailed is wrapped by Save after a batch failed to commit:
	// the cookie stays where it was, so the lost changes come again.
	ErrCommitFailed = errors.New("an earlier commit failed")
	// ErrWriteAhead is wrapped when a commit was abandoned because the
	// function set with Link.WriteAhead failed.
	ErrWriteAhead = errors.New("write-ahead failed; nothing committed")
	// ErrGone is wrapped by DB.Check, and by every commit, once the
	// store's path no longer names the file that was opened (removed,
	// or replaced): what is committed to it would be lost at exit.
	ErrGone = errors.New("store file removed or replaced since it was opened")
	// ErrLocked is wrapped when another process has the file open.
	ErrLocked = errors.New("store file is in use by another process")
)

// MismatchError says how the content asked for differs from the stored one.
type MismatchError struct {
	Path, Link     string
	Stored, Wanted Content
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: link %q was replicated from %s, the configuration asks for %s: use another store file, or drop the link's copy with 'replink reset'",
		e.Path, e.Link, e.Stored, e.Wanted)
}

func (e *MismatchError) Unwrap() error { return ErrContentMismatch }
