package modelcheck

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/feed/feedtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
	"github.com/replink/replink/store"
)

// ErrCrashed is what every write to the feed and every store commit
// returns from the crash point on.
var ErrCrashed = errors.New("modelcheck: crashed")

// faults is the crash layer: it counts the boundaries at which the
// consumer's durable state changes (feed writes, feed fsyncs, store
// commits) and, at the armed one, crashes: from then on nothing more
// reaches the disk. The store's boundary is store.Link.WriteAhead, the
// feed's are its feed.File.
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

// memFile is the feed's file: feedtest's in-memory feed.File, whose
// writes and fsyncs are crash boundaries.
type memFile struct {
	*feedtest.File
	f *faults

	mu     sync.Mutex
	tornAt int // after a torn write: the length the file keeps
	torn   bool
}

var _ feed.File = (*memFile)(nil)

// newMemFile is the file a process finds: data, all of it durable.
func newMemFile(f *faults, data []byte) *memFile {
	return &memFile{File: feedtest.NewFile(data), f: f}
}

func (m *memFile) Write(p []byte) (int, error) {
	if m.f.boundary(crashFeedWrite) {
		return m.File.Write(p)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f.point != crashFeedWrite || m.torn {
		return 0, ErrCrashed
	}
	// Torn: this write, the crash point, leaves a prefix on the disk.
	m.File.FailWrite(len(p)/2, ErrCrashed)
	n, err := m.File.Write(p)
	m.tornAt, m.torn = len(m.File.Written()), true
	return n, err
}

func (m *memFile) Sync() error {
	if !m.f.boundary(crashFeedSync) {
		return ErrCrashed
	}
	return m.File.Sync()
}

func (m *memFile) Truncate(size int64) error {
	if m.f.isCrashed() {
		return ErrCrashed
	}
	return m.File.Truncate(size)
}

// afterCrash is what the disk holds once the process is gone: everything
// written, or with power loss only what was fsynced (a torn write's
// prefix counts as reaching the disk).
func (m *memFile) afterCrash() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.torn:
		return m.File.Written()[:m.tornAt]
	case m.f.powerLoss:
		return m.File.Durable()
	}
	return m.File.Written()
}

func (m *memFile) contents() []byte { return m.File.Written() }

// tracing wraps the daemon's handler to trace what the link asks of it.
type tracing struct {
	*mirror.Handler
	trace func(string, ...any)
}

func (h tracing) Apply(ctx context.Context, c ldapadapter.Change) error {
	h.trace("    apply %s %s %q", c.Op, c.UUID, c.DN)
	return h.Handler.Apply(ctx, c)
}

func (h tracing) Known(ctx context.Context) ([]uuid.UUID, error) {
	h.trace("    known")
	return h.Handler.Known(ctx)
}

func (h tracing) Save(cookie []byte) error {
	h.trace("    save %q", cookie)
	return h.Handler.Save(cookie)
}

var (
	_ ldapadapter.Handler                  = tracing{}
	_ ldapadapter.TransactionalCookieStore = tracing{}
)

// newHandler is the daemon's handler (mirror.NewHandler) on the feed;
// the crash layer's store-commit boundary is the store's BeforeCommit
// (commitBoundary), in the goroutine that commits: a full batch commits in
// the background while the link goes on writing the feed, and a crash may
// fall on it there.
func newHandler(st *store.Link, fw *feed.Writer, trace func(string, ...any)) tracing {
	return tracing{Handler: mirror.NewHandler(st, fw, nil), trace: trace}
}

// commitBoundary is the store's BeforeCommit: the crash layer's
// store-commit boundary, after the write-ahead sync that comes before
// every store commit.
func commitBoundary(f *faults, trace func(string, ...any)) func() error {
	return func() error {
		if !f.boundary(crashStoreCommit) {
			trace("    store commit: crash")
			return ErrCrashed
		}
		return nil
	}
}
