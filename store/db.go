package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bucket layout: links/<name>/{entries, dns} plus the keys cookie, content,
// count, uncovered and dnindex in links/<name>.
var (
	bucketLinks   = []byte("links")
	bucketEntries = []byte("entries") // entryUUID (16 bytes) → entry record
	bucketDNs     = []byte("dns")     // folded DN, 0, entryUUID → nothing (index.go)
	keyCookie     = []byte("cookie")
	keyContent    = []byte("content")
	keyCount      = []byte("count")
	keyUncovered  = []byte("uncovered") // changes committed past the cookie
)

// Options tune a DB; the zero value is sensible.
type Options struct {
	// BatchSize is how many changes may wait in memory before they are
	// committed without waiting for a cookie. Default 1000.
	BatchSize int
	// ReadOnly opens the file for reading only (dump, status of a file in
	// use elsewhere is not possible: bbolt locks it).
	ReadOnly bool
	// BeforeCommit, if set, is called before every transaction a Link
	// commits, in the goroutine that commits it; an error fails the
	// commit as bbolt's own would. Crash tests put their crash point here.
	BeforeCommit func() error
}

// DB is one store file.
type DB struct {
	path   string
	opened os.FileInfo // the file opened at path, for Check
	bolt   *bolt.DB
	opts   Options

	mu    sync.Mutex
	links map[string]*Link
}

// Open opens or creates the store file at path, readable by its owner
// only. Another process holding the file is an error after a second.
func Open(path string, opts *Options) (*DB, error) {
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: o.ReadOnly, InitialMmapSize: initialMap})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if !o.ReadOnly {
		if err := os.Chmod(path, 0o600); err != nil { // a file made by hand stays private too
			b.Close()
			return nil, err
		}
	}
	opened, err := os.Stat(path) // just after bolt opened it: nothing else is meant to touch it
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &DB{path: path, opened: opened, bolt: b, opts: o, links: map[string]*Link{}}, nil
}

// initialMap is how much of the file bbolt maps from the start: 1 GiB of
// address space, not of memory or disk (outside Windows the file still
// grows as written). bbolt otherwise maps a new file small and doubles the
// map as it grows, and each remap in a commit copies every key and value
// the transaction holds out of the old map (Bucket.dereference: 15 % of
// the CPU of a 10,000-entry refresh into a new file), and waits for every
// read to end. Windows would make the file that large, and a 32-bit
// process may lack the room: there bbolt's default stays.
var initialMap = func() int {
	if runtime.GOOS == "windows" || math.MaxInt == math.MaxInt32 {
		return 0
	}
	return 1 << 30
}()

// Path is the file's path.
func (d *DB) Path() string { return d.path }

// Close closes the file, once the batches its links were committing have
// landed. Changes not yet committed are lost, as in a crash; the adapter
// saves a cookie (and so commits) when a link stops.
func (d *DB) Close() error {
	d.mu.Lock()
	for _, l := range d.links {
		l.mu.Lock()
		l.waitLocked() // a failure is the next session's to see; there is none
		l.mu.Unlock()
	}
	d.mu.Unlock()
	return d.bolt.Close()
}

// Link returns the copy of link name, creating it on first use. It is
// refused with a *MismatchError if the copy was made from other content.
func (d *DB) Link(name string, c Content) (*Link, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.links[name]; ok {
		if !l.content.Same(c) {
			return nil, &MismatchError{Path: d.path, Link: name, Stored: l.content, Wanted: c}
		}
		return l, nil
	}
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketLinks)
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return err
		}
		if raw := b.Get(keyContent); raw != nil {
			var stored Content
			if err := json.Unmarshal(raw, &stored); err != nil {
				return fmt.Errorf("link %q: stored content: %w", name, err)
			}
			if !stored.Same(c) {
				return &MismatchError{Path: d.path, Link: name, Stored: stored, Wanted: c}
			}
		} else {
			raw, _ := json.Marshal(c)
			if err := b.Put(keyContent, raw); err != nil {
				return err
			}
		}
		if _, err := b.CreateBucketIfNotExists(bucketEntries); err != nil {
			return err
		}
		if indexCurrent(b) {
			return nil
		}
		return rebuildIndex(b) // a new link, or a file with the old index
	})
	if err != nil {
		return nil, err
	}
	l := &Link{db: d, name: []byte(name), content: c}
	d.links[name] = l
	return l, nil
}

// Links lists the links the file holds, by name.
func (d *DB) Links() ([]string, error) {
	var names []string
	err := d.bolt.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketLinks)
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(k []byte) error {
			names = append(names, string(k))
			return nil
		})
	})
	sort.Strings(names)
	return names, err
}

// Reset deletes link name's copy and cookie, so that the next run loads it
// afresh, from whatever content it is then configured with.
func (d *DB) Reset(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, open := d.links[name]; open {
		return fmt.Errorf("link %q is open", name)
	}
	return d.bolt.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketLinks)
		if root == nil || root.Bucket([]byte(name)) == nil {
			return fmt.Errorf("%w: %q", ErrUnknownLink, name)
		}
		return root.DeleteBucket([]byte(name))
	})
}
