package feed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/replink/replink/ldapadapter"
)

// Writer appends records to a feed. Lines are buffered until Sync, which
// writes and fsyncs them: make Sync (better, SyncFor) the store link's
// WriteAhead hook. A Writer is safe for concurrent use by several links.
//
// A failed write or fsync of a file (a full disk) does not stop the feed
// for good: the next call cuts the file back to the end of the last
// fsynced line and carries on (repair.go). The lines it cut belong to
// changes no commit has covered yet; the Sync of each link that wrote one
// then fails with ErrDropped, so that link's commit fails and its changes
// come again.
type Writer struct {
	mu     sync.Mutex
	file   File          // nil for a stream
	buf    *bufio.Writer // a file's; it writes through offsetWriter
	stream *stream       // nil for a file
	dirty  bool          // lines written since the last successful Sync
	closed bool
	now    func() time.Time
	log    *slog.Logger
	name   string // the file's, for the log
	enc    bytes.Buffer

	// A file's repair state (repair.go).
	end      int64               // the file's size as far as this Writer wrote it
	durable  int64               // the end of the last fsynced whole line
	broken   error               // a write or fsync failed: repair before anything else
	unsynced map[string]struct{} // links with lines since the last successful fsync
	lost     map[string]struct{} // links whose lines a repair cut, not yet told
}

// Option tunes a Writer.
type Option func(*options)

type options struct {
	log   *slog.Logger
	now   func() time.Time
	stall time.Duration
}

// WithLogger sets where a Writer reports a torn line it cut, a mode it
// tightened and a repair after a failed write (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the clock of the records' time (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// DefaultStallTimeout is how long a stream Writer waits for its reader to
// take a line before it gives up with ErrStalled.
const DefaultStallTimeout = 10 * time.Second

// WithStallTimeout sets how long a stream Writer's Write, Sync and Close
// wait for a reader that takes nothing (default DefaultStallTimeout). It
// bounds how long a stalled reader can hold up a commit or a shutdown.
// Files ignore it.
func WithStallTimeout(d time.Duration) Option { return func(o *options) { o.stall = d } }

func makeOptions(opts []Option) options {
	o := options{log: slog.Default(), now: time.Now, stall: DefaultStallTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.stall <= 0 {
		o.stall = DefaultStallTimeout
	}
	return o
}

// Open opens the feed file at path for appending, cutting a torn last line
// left by a crash. The file is made 0600, an existing one too: it carries
// every attribute, password hashes included.
func Open(path string, opts ...Option) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if err := tightenMode(f, makeOptions(opts).log); err != nil {
		f.Close()
		return nil, fmt.Errorf("change feed %s: %w", path, err)
	}
	w, err := New(f, opts...)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("change feed %s: %w", path, err)
	}
	return w, nil
}

// New makes a Writer on f, first cutting a torn last line. The Writer owns
// f: Close closes it.
func New(f File, opts ...Option) (*Writer, error) {
	o := makeOptions(opts)
	keep, cut, err := cutTornTail(f)
	if err != nil {
		return nil, err
	}
	name := ""
	if fi, err := f.Stat(); err == nil {
		name = fi.Name()
	}
	logCut(o.log, name, cut)
	w := &Writer{file: f, now: o.now, log: o.log, name: name, end: keep, durable: keep,
		unsynced: map[string]struct{}{}, lost: map[string]struct{}{}}
	w.buf = bufio.NewWriterSize(offsetWriter{w}, 64<<10)
	return w, nil
}

// NewStream makes a Writer on a pipe or a terminal (replink run --changes
// -): each line is handed at once to a goroutine that writes it, since a
// reader waits for it, and Sync waits until every line is written (there
// is nothing to fsync). A reader that stops reading blocks that goroutine,
// never the Writer: see stream. The Writer does not close w.
func NewStream(w io.Writer, opts ...Option) *Writer {
	o := makeOptions(opts)
	return &Writer{stream: newStream(w, o.stall), now: o.now, log: o.log}
}

// Write appends the record of change c, applied to link, to the feed;
// position is the provider's cookie the copy had committed when c came.
// The line is durable only after Sync.
func (w *Writer) Write(link string, c ldapadapter.Change, position []byte) error {
	r := Record{Link: link, Op: c.Op, UUID: c.UUID, DN: c.DN, Cookie: position, Mods: c.Mods}
	if c.Entry != nil {
		if r.DN == "" {
			r.DN = c.Entry.DN
		}
		r.Attributes = make(map[string][][]byte, len(c.Entry.Attributes))
		for _, a := range c.Entry.Attributes {
			vals := a.ByteValues // the raw bytes: Values may not say them
			if len(vals) == 0 && len(a.Values) > 0 {
				vals = make([][]byte, len(a.Values))
				for i, v := range a.Values {
					vals[i] = []byte(v)
				}
			}
			r.Attributes[a.Name] = append(r.Attributes[a.Name], vals...)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	r.Time = w.now().UTC()
	w.enc.Reset()
	if err := appendRecord(&w.enc, &r); err != nil {
		return err
	}
	if w.stream != nil {
		return w.stream.send(bytes.Clone(w.enc.Bytes()))
	}
	w.unsynced[link] = struct{}{}
	if _, err := w.buf.Write(w.enc.Bytes()); err != nil {
		return w.fail(err)
	}
	w.dirty = true
	return nil
}

// Sync writes the buffered lines and fsyncs the file: when it returns nil,
// every line written before it is durable. Without new lines since the
// last Sync it does nothing.
//
// Sync does not know which link calls it: after a repair cut lines of any
// link, it fails with ErrDropped for every caller until each such link
// has been told through SyncFor. A Writer shared by several links should
// therefore be hooked with SyncFor.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if len(w.lost) > 0 {
		return fmt.Errorf("%w (links %v)", ErrDropped, slices.Sorted(maps.Keys(w.lost)))
	}
	return w.syncLocked(nil)
}

// SyncFor is Sync as link's write-ahead hook (store.Link.WriteAhead):
// it fails once with ErrDropped after a repair cut lines link wrote, so
// that link's commit, which holds their changes, does not happen and the
// changes come again; other links carry on.
func (w *Writer) SyncFor(link string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if _, ok := w.lost[link]; ok {
		delete(w.lost, link)
		return fmt.Errorf("%w (link %s)", ErrDropped, link)
	}
	return w.syncLocked(&link)
}

// usableLocked says why nothing can be written now, after repairing a
// file whose last write or fsync failed.
func (w *Writer) usableLocked() error {
	if w.closed {
		return ErrClosed
	}
	if w.stream != nil {
		return w.stream.failed()
	}
	return w.repairLocked()
}

// syncLocked flushes and fsyncs; told, if not nil, is the link whose
// commit fails if this does (so it need not be told again).
func (w *Writer) syncLocked(told *string) error {
	if w.stream != nil {
		return w.stream.flush()
	}
	if !w.dirty {
		return nil
	}
	err := w.buf.Flush()
	if err == nil {
		err = w.file.Sync()
	}
	if err != nil {
		err = w.fail(err)
		if told != nil {
			delete(w.lost, *told)
		}
		return err
	}
	w.durable = w.end
	w.dirty = false
	clear(w.unsynced)
	return nil
}

// Close syncs the feed and closes its file; a stream's Close returns
// within the stall timeout (see stream.close). Later calls return
// ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.stream != nil {
		return w.stream.close()
	}
	err := w.repairLocked()
	if err == nil {
		err = w.syncLocked(nil)
	}
	return errors.Join(err, w.file.Close())
}
