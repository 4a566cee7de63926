package feed

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/replink/replink/ldapadapter"
)

// Writer appends records to a feed. Lines are buffered until Sync, which
// writes and fsyncs them: make Sync the store link's WriteAhead hook. A
// Writer is safe for concurrent use by several links.
type Writer struct {
	mu     sync.Mutex
	file   File // nil for a stream
	buf    *bufio.Writer
	dirty  bool  // lines written since the last successful Sync
	err    error // sticky: the first failure (ErrFailed), or ErrClosed
	now    func() time.Time
	enc    bytes.Buffer
	stream bool
}

// Option tunes a Writer.
type Option func(*options)

type options struct {
	log *slog.Logger
	now func() time.Time
}

// WithLogger sets where a Writer reports a torn line it cut (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the clock of the records' time (default time.Now).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

func makeOptions(opts []Option) options {
	o := options{log: slog.Default(), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Open opens the feed file at path (created 0600) for appending, cutting a
// torn last line left by a crash.
func Open(path string, opts ...Option) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
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
	n, err := cutTornTail(f)
	if err != nil {
		return nil, err
	}
	name := ""
	if fi, err := f.Stat(); err == nil {
		name = fi.Name()
	}
	logCut(o.log, name, n)
	return &Writer{file: f, buf: bufio.NewWriterSize(f, 64<<10), now: o.now}, nil
}

// NewStream makes a Writer on a pipe or a terminal (replink run --changes
// -): each line is written at once, since a reader waits for it, and Sync
// has nothing to fsync.
func NewStream(w io.Writer, opts ...Option) *Writer {
	o := makeOptions(opts)
	return &Writer{buf: bufio.NewWriter(w), now: o.now, stream: true}
}

// Write appends the record of change c, applied to link, to the feed;
// position is the provider's cookie the copy had committed when c came.
// The line is durable only after Sync.
func (w *Writer) Write(link string, c ldapadapter.Change, position []byte) error {
	r := Record{Link: link, Op: c.Op, UUID: c.UUID, DN: c.DN, Cookie: position}
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
	if w.err != nil {
		return w.err
	}
	r.Time = w.now().UTC()
	w.enc.Reset()
	if err := appendRecord(&w.enc, &r); err != nil {
		return err
	}
	if _, err := w.buf.Write(w.enc.Bytes()); err != nil {
		return w.fail(err)
	}
	w.dirty = true
	if w.stream {
		if err := w.buf.Flush(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// Sync writes the buffered lines and fsyncs the file: when it returns nil,
// every line written before it is durable. Without new lines since the
// last Sync it does nothing.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncLocked()
}

func (w *Writer) syncLocked() error {
	if w.err != nil {
		return w.err
	}
	if !w.dirty {
		return nil
	}
	if err := w.buf.Flush(); err != nil {
		return w.fail(err)
	}
	if w.file != nil {
		if err := w.file.Sync(); err != nil {
			return w.fail(err)
		}
	}
	w.dirty = false
	return nil
}

// fail makes err sticky: after a failed write or fsync the file may hold a
// torn line or have lost synced-looking data, so nothing more is written.
func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("%w: %w", ErrFailed, err)
	return w.err
}

// Close syncs the feed and closes its file. Later calls return ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if errors.Is(w.err, ErrClosed) {
		return ErrClosed
	}
	err := w.syncLocked()
	if w.file != nil {
		err = errors.Join(err, w.file.Close())
	}
	w.err = ErrClosed
	return err
}
