package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/replink/replink/ldapadapter"
)

// Link is one link's copy in the file: an ldapadapter.Handler that keeps
// its own cookie (an ldapadapter.CookieStore). Its methods are safe for
// concurrent use; the adapter calls them one at a time.
type Link struct {
	db      *DB
	name    []byte
	content Content

	mu         sync.Mutex
	pending    []ldapadapter.Change // applied, not yet committed
	failed     error                // a commit failed since the last Load
	writeAhead func() error         // called before every commit; nil for none
	mark       []byte               // committed with the changes (WriteAheadMarked)
	checkpoint bool                 // commit even with nothing pending (Checkpoint)

	commits atomic.Int64 // transactions committed (each one fsyncs)
	applied atomic.Int64 // changes committed
}

var (
	_ ldapadapter.Handler     = (*Link)(nil)
	_ ldapadapter.CookieStore = (*Link)(nil)
)

// WriteAhead makes fn run before every commit of this link: a full batch
// in Apply, the commit before Known lists the entries, and Save. A commit
// whose fn fails does not happen: it fails like a commit that bbolt
// refused (the pending changes are dropped, and Save refuses cookies until
// the next Load, so the changes come again). A change feed sets it to its
// flush and fsync, so that nothing is in the store that the feed may lack
// after a crash. A nil fn removes the hook.
func (l *Link) WriteAhead(fn func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeAhead = fn
}

// Name is the link's name.
func (l *Link) Name() string { return string(l.name) }

// Apply queues c; it is committed with the next batch or cookie.
func (l *Link) Apply(_ context.Context, c ldapadapter.Change) error {
	if c.Op == ldapadapter.Upsert && c.Entry == nil {
		return fmt.Errorf("store: upsert of %q without an entry", c.DN)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, c)
	if len(l.pending) >= l.db.opts.BatchSize {
		return l.commitLocked(nil, false)
	}
	return nil
}

// Known commits what is pending, then lists the link's entries.
func (l *Link) Known(context.Context) ([]uuid.UUID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.commitLocked(nil, false); err != nil {
		return nil, err
	}
	var ids []uuid.UUID
	err := l.db.bolt.View(func(tx *bolt.Tx) error {
		b := l.bucket(tx)
		ids = make([]uuid.UUID, 0, count(b))
		return b.Bucket(bucketEntries).ForEach(func(k, _ []byte) error {
			id, err := uuid.FromBytes(k)
			if err != nil {
				return fmt.Errorf("store: entry key %x: %w", k, err)
			}
			ids = append(ids, id)
			return nil
		})
	})
	return ids, err
}

// Entry implements ldapadapter.EntryReader: the entry as the link last
// applied it, pending or committed, or nil when the copy does not hold it.
func (l *Link) Entry(_ context.Context, id uuid.UUID) (*ldap.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.pending) - 1; i >= 0; i-- {
		if c := &l.pending[i]; c.UUID == id {
			return c.Entry, nil // nil after a pending Delete
		}
	}
	var e *ldap.Entry
	err := l.db.bolt.View(func(tx *bolt.Tx) error {
		raw := l.bucket(tx).Bucket(bucketEntries).Get(id[:])
		if raw == nil {
			return nil
		}
		var err error
		e, err = decodeEntry(raw)
		return err
	})
	return e, err
}

var _ ldapadapter.EntryReader = (*Link)(nil)

// Load returns the committed cookie. A new session starts from it, so a
// failed commit is forgotten here: what it lost comes again. When the file
// holds changes committed after that cookie (a full batch, or a commit
// before a prune), there is none: a restart from it could keep an entry the
// provider added and deleted since, so the link reloads in full instead.
//
// A new session starts from what Load returns, so changes still pending
// from the last one are dropped here: no cookie covers them, the provider
// sends them again if they still hold, and committing them under a later
// cookie would keep an entry the provider has since added and deleted
// (389-ds never names it again).
func (l *Link) Load() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed = nil
	clear(l.pending)
	l.pending = l.pending[:0]
	var cookie []byte
	err := l.db.bolt.View(func(tx *bolt.Tx) error {
		b := l.bucket(tx)
		if b.Get(keyUncovered) == nil {
			cookie = bytes.Clone(b.Get(keyCookie))
		}
		return nil
	})
	return cookie, err
}

// Save commits every pending change and cookie in one transaction; a nil
// cookie erases it. After a failed commit it refuses: the cookie must not
// claim changes the file does not hold.
func (l *Link) Save(cookie []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return fmt.Errorf("%w: %w", ErrCommitFailed, l.failed)
	}
	return l.commitLocked(cookie, true)
}

// CommitsWithChanges makes Link an ldapadapter.TransactionalCookieStore:
// a cookie is committed with the changes before it, and a batch committed
// without one erases the stored cookie, so the copy is never ahead of it.
func (*Link) CommitsWithChanges() {}

var _ ldapadapter.TransactionalCookieStore = (*Link)(nil)

// commitLocked writes the pending changes, and the cookie if setCookie, in
// one transaction, after checking that the path still names the open file
// (DB.Check). On failure the pending changes are dropped and the link
// refuses cookies until the next Load.
func (l *Link) commitLocked(cookie []byte, setCookie bool) error {
	if len(l.pending) == 0 && !setCookie && !l.checkpoint {
		return nil
	}
	if l.failed != nil {
		l.pending = l.pending[:0]
		return fmt.Errorf("%w: %w", ErrCommitFailed, l.failed)
	}
	err := l.db.Check() // a commit to a file removed or replaced is lost at exit
	if err == nil && l.writeAhead != nil {
		if err = l.writeAhead(); err != nil {
			err = fmt.Errorf("%w: %w", ErrWriteAhead, err)
		}
	}
	if err == nil {
		err = l.db.bolt.Update(l.commitTx(cookie, setCookie))
	}
	done := len(l.pending)
	clear(l.pending) // drop the entries' references
	l.pending = l.pending[:0]
	if err != nil {
		l.failed = err
		return fmt.Errorf("store %s, link %s: commit: %w", l.db.path, l.name, err)
	}
	l.commits.Add(1)
	l.applied.Add(int64(done))
	return nil
}

// commitTx is the transaction that writes the pending changes, and the
// cookie if setCookie.
func (l *Link) commitTx(cookie []byte, setCookie bool) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := l.bucket(tx)
		n := count(b)
		for i := range l.pending {
			d, err := apply(b, &l.pending[i])
			if err != nil {
				return err
			}
			n += d
		}
		if err := b.Put(keyCount, binary.AppendUvarint(nil, uint64(n))); err != nil {
			return err
		}
		if l.mark != nil {
			if err := b.Put(keyMark, l.mark); err != nil {
				return err
			}
		}
		switch {
		case !setCookie:
			// Changes the cookie does not cover: until a cookie that does
			// is saved with them, the stored one is not to be used.
			if len(l.pending) == 0 {
				return nil
			}
			return b.Put(keyUncovered, []byte{1})
		case cookie == nil:
			if err := b.Delete(keyUncovered); err != nil {
				return err
			}
			return b.Delete(keyCookie)
		default:
			if err := b.Delete(keyUncovered); err != nil {
				return err
			}
			return b.Put(keyCookie, cookie)
		}
	}
}

// apply writes one change and says by how much the entry count moved.
func apply(b *bolt.Bucket, c *ldapadapter.Change) (int, error) {
	entries, dns := b.Bucket(bucketEntries), b.Bucket(bucketDNs)
	key := c.UUID[:]
	old := entries.Get(key)
	if old != nil {
		// The index key holds the UUID: the old one is this entry's alone.
		oldDN, err := decodeDN(old)
		if err != nil {
			return 0, err
		}
		if err := dns.Delete(indexKey(oldDN, key)); err != nil {
			return 0, err
		}
	}
	switch c.Op {
	case ldapadapter.Delete:
		if old == nil {
			return 0, nil
		}
		return -1, entries.Delete(key)
	case ldapadapter.Upsert:
		if err := entries.Put(key, encodeEntry(c.Entry)); err != nil {
			return 0, err
		}
		if err := dns.Put(indexKey(c.Entry.DN, key), nil); err != nil {
			return 0, err
		}
		if old == nil {
			return 1, nil
		}
		return 0, nil
	}
	return 0, fmt.Errorf("store: unknown op %v", c.Op)
}

func count(b *bolt.Bucket) int {
	n, _ := binary.Uvarint(b.Get(keyCount))
	return int(n)
}

func (l *Link) bucket(tx *bolt.Tx) *bolt.Bucket {
	return tx.Bucket(bucketLinks).Bucket(l.name)
}

// Len is how many entries the committed copy holds.
func (l *Link) Len() (int, error) {
	var n int
	err := l.db.bolt.View(func(tx *bolt.Tx) error {
		n = count(l.bucket(tx))
		return nil
	})
	return n, err
}

// Commits counts the transactions committed through this Link (bbolt
// fsyncs each one); Committed counts the changes they held.
func (l *Link) Commits() int64   { return l.commits.Load() }
func (l *Link) Committed() int64 { return l.applied.Load() }

// Each calls fn with every committed entry of link name in db, each once,
// in the order of their normalised, lower-cased DNs (entries whose DNs
// differ only in case, in the order of their UUIDs).
func (d *DB) Each(name string, fn func(*ldap.Entry) error) error {
	return d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketLinks)
		if root == nil || root.Bucket([]byte(name)) == nil {
			return fmt.Errorf("%w: %q", ErrUnknownLink, name)
		}
		b := root.Bucket([]byte(name))
		entries := b.Bucket(bucketEntries)
		return inDNOrder(b, func(id []byte) error {
			raw := entries.Get(id)
			if raw == nil {
				return fmt.Errorf("store: DN index names entry %x, which is not there: %w", id, errCorrupt)
			}
			e, err := decodeEntry(raw)
			if err != nil {
				return err
			}
			return fn(e)
		})
	})
}
