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
	flight     *flight              // a full batch being committed in the background
	spare      []ldapadapter.Change // the last flight's array, for the next batch

	commits atomic.Int64 // transactions committed (each one fsyncs)
	applied atomic.Int64 // changes committed
}

var (
	_ ldapadapter.Handler     = (*Link)(nil)
	_ ldapadapter.CookieStore = (*Link)(nil)
)

// WriteAhead makes fn run before every commit of this link: a full batch
// in Apply, and Save. A commit
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

// Apply queues c; it is committed with the next batch or cookie. A full
// batch is committed in the background while the next one fills (see
// flight); a commit that failed there fails the Apply after it.
func (l *Link) Apply(_ context.Context, c ldapadapter.Change) error {
	if c.Op == ldapadapter.Upsert && c.Entry == nil {
		return fmt.Errorf("store: upsert of %q without an entry", c.DN)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.landedLocked(); err != nil {
		return err
	}
	l.pending = append(l.pending, c)
	switch n := len(l.pending); {
	case n < l.db.opts.BatchSize:
		return nil
	case n < flightGrowth*l.db.opts.BatchSize && l.flight != nil && !l.flight.landed():
		return nil // the store is behind: a bigger batch costs it less per change
	}
	return l.launchLocked()
}

// flightGrowth bounds how far the pending batch grows while a flight is in
// the air, in batches. Commits slower than decoding then take fewer, larger
// transactions: bbolt rewrites each leaf page a transaction touches, and
// during a refresh in entryUUID order most batches touch most leaves of
// the DN index, so ten batches in one write each such page once, not ten
// times.
const flightGrowth = 10

// A flight is a full batch committed by a goroutine of its own, so that
// during a refresh the link decodes the next batch while bbolt writes and
// fsyncs the last one: the two take turns on one core otherwise.
//
// It changes nothing of what a crash can leave: there is at most one
// flight, every other commit (a cookie, Known, Checkpoint, Load) waits for
// it first, so the transactions reach the file in the order and with the
// contents they had when each waited for the last, and a file is always
// the result of a prefix of them. The write-ahead hook still runs before
// the batch leaves (so the feed holds every change the flight commits, and
// its mark is that of the batch), and a flight that failed fails the next
// Apply or Save as a failed commit did: the cookie never claims it.
type flight struct {
	batch []ldapadapter.Change
	done  chan struct{} // closed when the commit returned
	err   error
}

// launchLocked hands the pending batch to a flight, after the previous
// flight has landed.
func (l *Link) launchLocked() error {
	if err := l.waitLocked(); err != nil {
		return err
	}
	if err := l.beforeCommitLocked(); err != nil {
		return err
	}
	f := &flight{batch: l.pending, done: make(chan struct{})}
	l.pending, l.spare = l.spare, nil
	l.flight = f
	commit := l.commitTx(f.batch, l.mark, nil, false)
	go func() {
		defer close(f.done)
		f.err = l.update(commit)
		if f.err == nil {
			l.commits.Add(1)
			l.applied.Add(int64(len(f.batch)))
		}
	}()
	return nil
}

// Wait returns once the batch being committed in the background, if any,
// has landed, with the failure of that commit or of an earlier one since
// the last Load.
func (l *Link) Wait() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.waitLocked(); err != nil {
		return err
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %w", ErrCommitFailed, l.failed)
	}
	return nil
}

// landed reports whether the flight's commit has returned.
func (f *flight) landed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// landedLocked reports the failure of a flight that has landed, without
// waiting for one still in the air.
func (l *Link) landedLocked() error {
	if f := l.flight; f != nil && !f.landed() {
		return nil
	}
	return l.waitLocked()
}

// waitLocked waits for the flight in the air, if any. Its failure drops
// what is pending and fails every commit until the next Load, as a
// failed commit does.
func (l *Link) waitLocked() error {
	f := l.flight
	if f == nil {
		return nil
	}
	<-f.done
	l.flight = nil
	clear(f.batch) // drop the entries' references
	l.spare = f.batch[:0]
	if f.err != nil {
		clear(l.pending)
		l.pending = l.pending[:0]
		l.failed = f.err
		return fmt.Errorf("store %s, link %s: commit: %w", l.db.path, l.name, f.err)
	}
	return nil
}

// beforeCommitLocked checks, before a commit, that the link may commit
// and that the path still names the open file (DB.Check), and runs the
// write-ahead hook. On failure the pending changes are dropped and the
// link refuses cookies until the next Load.
func (l *Link) beforeCommitLocked() error {
	if l.failed != nil {
		clear(l.pending)
		l.pending = l.pending[:0]
		return fmt.Errorf("%w: %w", ErrCommitFailed, l.failed)
	}
	err := l.db.Check() // a commit to a file removed or replaced is lost at exit
	if err == nil && l.writeAhead != nil {
		if err = l.writeAhead(); err != nil {
			err = fmt.Errorf("%w: %w", ErrWriteAhead, err)
		}
	}
	if err != nil {
		clear(l.pending)
		l.pending = l.pending[:0]
		l.failed = err
		return fmt.Errorf("store %s, link %s: commit: %w", l.db.path, l.name, err)
	}
	return nil
}

// update runs one commit, after the DB's BeforeCommit hook.
func (l *Link) update(fn func(*bolt.Tx) error) error {
	if h := l.db.opts.BeforeCommit; h != nil {
		if err := h(); err != nil {
			return err
		}
	}
	return l.db.bolt.Update(fn)
}

// Known lists the link's entries as it applied them: the committed copy,
// then the batch in flight and the pending changes replayed over it. It
// commits nothing and does not wait for the flight: at the end of a
// present phase the session lists the copy while the last full batch is
// still being written, and the Save that follows commits what is pending
// with the cookie, in one transaction (a commit here only cost one more
// fsync before it). bbolt lets a read run beside the flight's write (the
// map is large enough never to be remapped under it, see Open); whether
// the read sees the file before or after the flight landed, replaying the
// flight gives the same list.
func (l *Link) Known(context.Context) ([]uuid.UUID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.landedLocked(); err != nil {
		return nil, err
	}
	if l.failed != nil {
		return nil, fmt.Errorf("%w: %w", ErrCommitFailed, l.failed)
	}
	var changed map[uuid.UUID]bool // the last op on each entry in flight or pending: held or not
	if f := l.flight; f != nil || len(l.pending) > 0 {
		n := len(l.pending)
		if f != nil {
			n += len(f.batch)
		}
		changed = make(map[uuid.UUID]bool, n)
		for _, batch := range [2][]ldapadapter.Change{l.flying(), l.pending} {
			for i := range batch {
				changed[batch[i].UUID] = batch[i].Op == ldapadapter.Upsert
			}
		}
	}
	var ids []uuid.UUID
	err := l.db.bolt.View(func(tx *bolt.Tx) error {
		b := l.bucket(tx)
		ids = make([]uuid.UUID, 0, count(b)+len(changed))
		return b.Bucket(bucketEntries).ForEach(func(k, _ []byte) error {
			id, err := uuid.FromBytes(k)
			if err != nil {
				return fmt.Errorf("store: entry key %x: %w", k, err)
			}
			if _, ok := changed[id]; !ok {
				ids = append(ids, id)
			}
			return nil
		})
	})
	for id, held := range changed {
		if held {
			ids = append(ids, id)
		}
	}
	return ids, err
}

// flying is the batch of the flight in the air, if any; the caller holds
// l.mu, so waitLocked does not clear it meanwhile.
func (l *Link) flying() []ldapadapter.Change {
	if l.flight == nil {
		return nil
	}
	return l.flight.batch
}

// Entry implements ldapadapter.EntryReader: the entry as the link last
// applied it, pending or committed, or nil when the copy does not hold it.
func (l *Link) Entry(_ context.Context, id uuid.UUID) (*ldap.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waitLocked() // a failure is kept for the next commit; the file holds what it holds
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
	l.waitLocked() // nothing of the last session commits after this
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
	if err := l.waitLocked(); err != nil {
		return fmt.Errorf("%w: %w", ErrCommitFailed, err)
	}
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
// one transaction, once the flight in the air has landed. On failure the
// pending changes are dropped and the link refuses cookies until the next
// Load.
func (l *Link) commitLocked(cookie []byte, setCookie bool) error {
	if err := l.waitLocked(); err != nil {
		return err
	}
	if len(l.pending) == 0 && !setCookie && !l.checkpoint {
		return nil
	}
	if err := l.beforeCommitLocked(); err != nil {
		return err
	}
	err := l.update(l.commitTx(l.pending, l.mark, cookie, setCookie))
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

// commitTx is the transaction that writes batch and the write-ahead mark,
// and the cookie if setCookie.
func (l *Link) commitTx(batch []ldapadapter.Change, mark, cookie []byte, setCookie bool) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := l.bucket(tx)
		b.Bucket(bucketEntries).FillPercent = entriesFill // the tx keeps this *Bucket: apply gets it back
		n := count(b)
		for i := range batch {
			d, err := apply(b, &batch[i])
			if err != nil {
				return err
			}
			n += d
		}
		if err := b.Put(keyCount, binary.AppendUvarint(nil, uint64(n))); err != nil {
			return err
		}
		if mark != nil {
			if err := b.Put(keyMark, mark); err != nil {
				return err
			}
		}
		switch {
		case !setCookie:
			// Changes the cookie does not cover: until a cookie that does
			// is saved with them, the stored one is not to be used.
			if len(batch) == 0 {
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

// entriesFill is how full bbolt packs the pages it splits in the entries
// bucket (its default is half). Providers number entries in the order they
// were made (slapd's entryUUIDs are time-based, time_low first), so a
// refresh mostly appends to this bucket, and a page split there is never
// filled again: at half, the file holds and each commit writes twice the
// pages the entries need.
const entriesFill = 0.9

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
