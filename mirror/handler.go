package mirror

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// Handler is one link's ldapadapter.Handler in the daemon: its copy in the
// store, the change feed written ahead of it, and counters.
//
// It embeds the *store.Link, so every capability the store link has is the
// Handler's without a forwarding method to forget: Load, Known, Len and,
// above all, CommitsWithChanges, which tells the adapter that the cookie is
// committed with the changes (ldapadapter.TransactionalCookieStore; without
// it the link saves an extra "ahead" cookie per batch and a 389-ds link
// reloads in full after a crash). Handler overrides only Apply (the feed
// line first) and Save (to remember the position).
type Handler struct {
	*store.Link
	feed      Feed // nil: no feed
	onApply   func()
	onFeedErr func(link string, err error)

	applied  atomic.Int64 // changes applied since the process started
	savedAt  atomic.Int64 // unix nanos of the last cookie commit
	mu       sync.Mutex
	position []byte // the provider's cookie last committed
}

var (
	_ ldapadapter.Handler                  = (*Handler)(nil)
	_ ldapadapter.TransactionalCookieStore = (*Handler)(nil)
)

// NewHandler makes the handler of link l. With a feed f, every change is
// written to f before l applies it, and f's Sync becomes l's write-ahead
// hook: no commit of l (a full batch, or one with a cookie)
// happens before the lines of the changes it holds are durable, so a
// change in the store is always in the feed. onApply, if not nil, is
// called after each change applied.
func NewHandler(l *store.Link, f Feed, onApply func()) *Handler {
	return newHandler(l, f, onApply, nil)
}

// linkSyncer is a Feed that can tell which link syncs (*feed.Writer): after
// a failed write was repaired, the commit of a link whose lines were cut
// fails (feed.ErrDropped), so its changes come again, and the others'
// go on.
type linkSyncer interface {
	SyncFor(link string) error
}

// markedFeed is a Feed that can say how far it is durable and list what a
// link wrote past such a mark (*feed.Writer on a file): its mark is
// committed with the link's changes, and the lines of changes no commit
// took are restated when the next session starts (Load).
type markedFeed interface {
	SyncMark(link string) ([]byte, error)
	Since(link string, mark []byte) ([]uuid.UUID, error)
}

// newHandler is NewHandler telling onFeedErr of every feed write or sync
// that failed.
func newHandler(l *store.Link, f Feed, onApply func(), onFeedErr func(string, error)) *Handler {
	if v := reflect.ValueOf(f); f != nil && v.Kind() == reflect.Pointer && v.IsNil() {
		f = nil // a nil *feed.Writer is no feed
	}
	h := &Handler{Link: l, feed: f, onApply: onApply, onFeedErr: onFeedErr}
	if mf, ok := f.(markedFeed); ok {
		l.WriteAheadMarked(func() ([]byte, error) {
			m, err := mf.SyncMark(l.Name())
			if err != nil && onFeedErr != nil {
				onFeedErr(l.Name(), err)
			}
			return m, err
		})
		return h
	}
	if f != nil {
		sync := f.Sync
		if sf, ok := f.(linkSyncer); ok { // fails only the links whose lines a repair cut
			sync = func() error { return sf.SyncFor(l.Name()) }
		}
		l.WriteAhead(func() error {
			err := sync()
			if err != nil && onFeedErr != nil {
				onFeedErr(l.Name(), err)
			}
			return err
		})
	}
	return h
}

// Apply writes c to the feed, then queues it in the store.
func (h *Handler) Apply(ctx context.Context, c ldapadapter.Change) error {
	if h.feed != nil {
		h.mu.Lock()
		pos := h.position
		h.mu.Unlock()
		if err := h.feed.Write(h.Name(), c, pos); err != nil {
			if h.onFeedErr != nil {
				h.onFeedErr(h.Name(), err)
			}
			return err
		}
	}
	if err := h.Link.Apply(ctx, c); err != nil {
		return err
	}
	h.applied.Add(1)
	if h.onApply != nil {
		h.onApply()
	}
	return nil
}

// Load starts a session from the committed cookie. The store drops what
// the last session left uncommitted (a crash between the feed's sync and
// the commit, a connection lost before a cookie covered its changes), and
// the feed lines written for those changes are restated from the store:
// an upsert of the entry as committed, or a delete. Without that, an entry
// the provider added and deleted meanwhile, which it never names again,
// would stay in the feed for ever.
func (h *Handler) Load() ([]byte, error) {
	cookie, err := h.Link.Load()
	if err != nil {
		return nil, err
	}
	if mf, ok := h.feed.(markedFeed); ok {
		if err := h.restate(mf); err != nil {
			return nil, err
		}
	}
	return cookie, nil
}

// restate writes, for each entry the link's feed lines past the committed
// mark name, the entry as the store holds it, then commits a new mark.
func (h *Handler) restate(mf markedFeed) error {
	mark, err := h.Link.Mark()
	if err != nil {
		return err
	}
	ids, err := mf.Since(h.Name(), mark)
	switch {
	case errors.Is(err, feed.ErrNoMark):
		return nil // a stream: nothing to read back
	case err != nil:
		return err
	case mark == nil:
		return h.Link.Checkpoint() // the first session: marks start here
	case len(ids) == 0:
		return nil
	}
	h.mu.Lock()
	pos := h.position
	h.mu.Unlock()
	done := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		if done[id] {
			continue
		}
		done[id] = true
		e, err := h.Link.Entry(context.Background(), id)
		if err != nil {
			return err
		}
		c := ldapadapter.Change{Op: ldapadapter.Delete, UUID: id}
		if e != nil {
			c = ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: e.DN, Entry: e}
		}
		if err := h.feed.Write(h.Name(), c, pos); err != nil {
			return err
		}
	}
	return h.Link.Checkpoint()
}

// Save commits the pending changes and the cookie together (the feed is
// synced first, by the write-ahead hook) and remembers the position.
func (h *Handler) Save(cookie []byte) error {
	if err := h.Link.Save(cookie); err != nil {
		return err
	}
	h.mu.Lock()
	h.position = providerCookie(cookie)
	h.mu.Unlock()
	h.savedAt.Store(time.Now().UnixNano())
	return nil
}

// providerCookie is the provider's cookie inside what the adapter stores
// (its content binding comes first, up to a newline).
func providerCookie(stored []byte) []byte {
	if _, c, ok := bytes.Cut(stored, []byte{'\n'}); ok {
		return c
	}
	return stored
}

// Applied counts the changes applied since the process started.
func (h *Handler) Applied() int64 { return h.applied.Load() }

// CookieAge is how long ago the cookie was last committed, or -1 if it
// was not since the process started.
func (h *Handler) CookieAge() time.Duration {
	at := h.savedAt.Load()
	if at == 0 {
		return -1
	}
	return time.Since(time.Unix(0, at))
}
