package modelcheck

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// ErrCrashed is what every write to the feed and every store commit
// returns from the crash point on.
var ErrCrashed = errors.New("modelcheck: crashed")

// faults is the crash layer: it counts the boundaries at which the
// consumer's durable state changes (feed writes, feed fsyncs, store
// commits) and, at the armed one, crashes: from then on nothing more
// reaches the disk. The store's boundary is store.Link.WriteAhead; once
// package feed lands, the feed's sit behind feed.File (memFile has its shape).
type faults struct {
	mu        sync.Mutex
	armed     bool
	point     int // crashFeedWrite, ...
	k         int // fire at the k-th such boundary from arming
	seen      int
	crashed   bool
	powerLoss bool
	where     string
}

func (f *faults) arm(point, k int, powerLoss bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return
	}
	f.armed, f.point, f.k, f.seen, f.powerLoss = true, point, k, 0, powerLoss
}

// boundary reports whether the boundary may proceed; at the armed one the
// process crashes instead.
func (f *faults) boundary(point int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.crashed {
		return false
	}
	if f.armed && f.point == point {
		f.seen++
		if f.seen == f.k {
			f.crashed, f.where = true, fmt.Sprintf("%s #%d", crashNames[point], f.k)
			return false
		}
	}
	return true
}

func (f *faults) isCrashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// memFile is the feed's file: what was written, and how much of it an
// fsync made durable. It is feed.File's shape: Write, Sync, Close.
type memFile struct {
	mu      sync.Mutex
	f       *faults
	data    []byte
	durable int
	tornAt  int // after a torn write: the length the file keeps
	torn    bool
}

func (m *memFile) Write(p []byte) (int, error) {
	if !m.f.boundary(crashFeedWrite) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.f.where == fmt.Sprintf("%s #%d", crashNames[crashFeedWrite], m.f.k) && !m.torn {
			// Torn: a prefix of this write reached the disk.
			n := len(p) / 2
			m.data = append(m.data, p[:n]...)
			m.tornAt, m.torn = len(m.data), true
		}
		return 0, ErrCrashed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = append(m.data, p...)
	return len(p), nil
}

func (m *memFile) Sync() error {
	if !m.f.boundary(crashFeedSync) {
		return ErrCrashed
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durable = len(m.data)
	return nil
}

func (m *memFile) Close() error { return nil }

// afterCrash is what the disk holds once the process is gone: everything
// written, or with power loss only what was fsynced (a torn write's
// prefix counts as reaching the disk).
func (m *memFile) afterCrash() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.torn:
		return bytes.Clone(m.data[:m.tornAt])
	case m.f.powerLoss:
		return bytes.Clone(m.data[:m.durable])
	}
	return bytes.Clone(m.data)
}

func (m *memFile) contents() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data)
}

// feedWriter mirrors cmd/replink's feed (package main, so it cannot be
// imported): one JSON line per applied change, buffered, flushed and
// fsynced before the cookie that covers it is committed.
type feedWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	f    *memFile
	line feedLine
}

type feedLine struct {
	Time       time.Time           `json:"time"`
	Link       string              `json:"link"`
	Op         string              `json:"op"`
	DN         string              `json:"dn,omitempty"`
	UUID       string              `json:"uuid"`
	Attributes map[string][]string `json:"attributes,omitempty"`
	Cookie     string              `json:"cookie,omitempty"`
}

func newFeedWriter(f *memFile) *feedWriter {
	return &feedWriter{w: bufio.NewWriterSize(f, 64<<10), f: f}
}

func (f *feedWriter) write(link string, c ldapadapter.Change, position []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := &f.line
	*l = feedLine{Time: time.Now().UTC(), Link: link, Op: c.Op.String(), DN: c.DN, UUID: c.UUID.String(), Cookie: string(position)}
	if c.Entry != nil {
		l.Attributes = make(map[string][]string, len(c.Entry.Attributes))
		for _, a := range c.Entry.Attributes {
			l.Attributes[a.Name] = a.Values
		}
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	_, err = f.w.Write(append(b, '\n'))
	return err
}

func (f *feedWriter) sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.w.Flush(); err != nil {
		return err
	}
	return f.f.Sync()
}

// handler mirrors cmd/replink's handler: the store link with the feed
// written ahead of it. The crash layer's store-commit boundary is the
// store's WriteAhead hook, run before every commit.
type handler struct {
	link  string
	st    *store.Link
	feed  *feedWriter
	f     *faults
	trace func(string, ...any)

	mu       sync.Mutex
	position []byte
}

func newHandler(link string, st *store.Link, feed *feedWriter, f *faults, trace func(string, ...any)) *handler {
	h := &handler{link: link, st: st, feed: feed, f: f, trace: trace}
	st.WriteAhead(func() error {
		if !f.boundary(crashStoreCommit) {
			trace("    store commit: crash")
			return ErrCrashed
		}
		return nil
	})
	return h
}

func (h *handler) Apply(ctx context.Context, c ldapadapter.Change) error {
	h.trace("    apply %s %s %q", c.Op, c.UUID, c.DN)
	h.mu.Lock()
	pos := h.position
	h.mu.Unlock()
	if err := h.feed.write(h.link, c, pos); err != nil {
		return err
	}
	return h.st.Apply(ctx, c)
}

func (h *handler) Known(ctx context.Context) ([]uuid.UUID, error) {
	h.trace("    known")
	return h.st.Known(ctx)
}

func (h *handler) Load() ([]byte, error) { return h.st.Load() }

// Save makes the feed durable, then commits the pending changes and the
// cookie together.
func (h *handler) Save(cookie []byte) error {
	h.trace("    save %q", cookie)
	if err := h.feed.sync(); err != nil {
		return err
	}
	if err := h.st.Save(cookie); err != nil {
		return err
	}
	h.mu.Lock()
	if _, c, ok := bytes.Cut(cookie, []byte{'\n'}); ok {
		h.position = c
	} else {
		h.position = cookie
	}
	h.mu.Unlock()
	return nil
}

var (
	_ ldapadapter.Handler     = (*handler)(nil)
	_ ldapadapter.CookieStore = (*handler)(nil)
)
