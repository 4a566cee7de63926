package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// keyMark holds how far the write-ahead log (the change feed) was durable
// at the link's last commit: what the log holds for the link past it was
// written for changes no commit took.
var keyMark = []byte("mark")

// WriteAheadMarked is WriteAhead for a log that can say how far it is
// durable: fn's mark is committed in the same transaction as the changes,
// and Mark reads it back. After a crash, or a session that ended before its
// changes were committed, the log's records past the mark are of changes
// the store never took, which the log's writer may then correct.
func (l *Link) WriteAheadMarked(fn func() (mark []byte, err error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fn == nil {
		l.writeAhead = nil
		return
	}
	l.writeAhead = func() error {
		m, err := fn()
		l.mark = m // taken by the commit it precedes, under the same lock
		return err
	}
}

// Mark is the write-ahead mark of the link's last commit, or nil.
func (l *Link) Mark() ([]byte, error) {
	var m []byte
	err := l.db.bolt.View(func(tx *bolt.Tx) error {
		m = bytes.Clone(l.bucket(tx).Get(keyMark))
		return nil
	})
	return m, err
}

// Checkpoint commits what is pending, and the write-ahead mark, even when
// nothing is: after the log's writer has corrected the records past the
// mark, it moves the mark past the corrections.
func (l *Link) Checkpoint() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkpoint = true
	defer func() { l.checkpoint = false }()
	return l.commitLocked(nil, false)
}
