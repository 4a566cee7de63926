package main

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// handler is what a link's adapter calls: the link's copy in the store,
// with the change feed written ahead of it and counters for status and
// metrics. Like the store link it wraps, it keeps its own cookie, so the
// feed is flushed before every cookie commit: a reader of the feed sees
// each change at least once.
type handler struct {
	link    string
	st      *store.Link
	feed    *feed // nil without --changes
	onApply func()

	applied  atomic.Int64 // changes applied since the process started
	savedAt  atomic.Int64 // unix nanos of the last cookie commit
	mu       sync.Mutex
	position []byte // the newest cookie the provider sent
}

var (
	_ ldapadapter.Handler     = (*handler)(nil)
	_ ldapadapter.CookieStore = (*handler)(nil)
)

func (h *handler) Apply(ctx context.Context, c ldapadapter.Change) error {
	if h.feed != nil {
		h.mu.Lock()
		pos := h.position
		h.mu.Unlock()
		if err := h.feed.write(h.link, c, pos); err != nil {
			return err
		}
	}
	if err := h.st.Apply(ctx, c); err != nil {
		return err
	}
	h.applied.Add(1)
	if h.onApply != nil {
		h.onApply()
	}
	return nil
}

func (h *handler) Known(ctx context.Context) ([]uuid.UUID, error) { return h.st.Known(ctx) }

func (h *handler) Load() ([]byte, error) { return h.st.Load() }

// Save makes the feed durable, then commits the pending changes and the
// cookie together.
func (h *handler) Save(cookie []byte) error {
	if h.feed != nil {
		if err := h.feed.sync(); err != nil {
			return err
		}
	}
	if err := h.st.Save(cookie); err != nil {
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

// cookieAge is how long ago the cookie was last committed, or -1.
func (h *handler) cookieAge() time.Duration {
	at := h.savedAt.Load()
	if at == 0 {
		return -1
	}
	return time.Since(time.Unix(0, at))
}
