package ldapadapter

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

// linkState is what the connections of one link share, across reconnects
// and reconfigurations: one connection at a time is current, but a handler
// abandoned by an earlier one may still be running.
type linkState struct {
	// gate is held while the handler is called or the cookie saved, so
	// the changes of two connections never interleave and the cookie store
	// sees one writer at a time: the last cookie saved is the newest.
	gate chan struct{}
	// reload asks the next sync session to drop the cookie (Link.Reload).
	reload atomic.Bool
	// cookies keeps the cookie of a link configured without a CookieStore,
	// across its reconnections and reconfigurations.
	cookies MemoryCookieStore
	// applied is what a HandlerFunc was handed, so that a prune can reach
	// it: a function cannot list the copy it feeds.
	applied uuidSet
	// connects bounds the connection set-ups of a Consumer's links per
	// provider (connectgate.go); nil for a link of its own.
	connects *connectGates
	// poller watches the sockets of a Consumer's persisting links while
	// they wait; nil: each waits on its own.
	poller *poller
	// heldDeletions is the deletion guard's state (guard.go).
	heldDeletions
	// observed is what the link reports about its transport (transport.go).
	observed
	// base is the base entry's sync UUID as last learnt, for the content
	// (digest) it was learnt under. A provider whose base search hides
	// entryUUID and nsUniqueId teaches it only in a reload's stream; an
	// incremental refresh on the next connection would not, and a base
	// replaced under it would then go unseen.
	baseMu     sync.Mutex
	baseDigest string
	baseID     uuid.UUID
}

// rememberBase records id as the base entry of the content digest.
func (s *linkState) rememberBase(digest string, id uuid.UUID) {
	s.baseMu.Lock()
	defer s.baseMu.Unlock()
	s.baseDigest, s.baseID = digest, id
}

// knownBase is the base entry's UUID last learnt for digest, or zero.
func (s *linkState) knownBase(digest string) uuid.UUID {
	s.baseMu.Lock()
	defer s.baseMu.Unlock()
	if s.baseDigest != digest {
		return uuid.Nil
	}
	return s.baseID
}

func newLinkState() *linkState { return &linkState{gate: make(chan struct{}, 1)} }

// enter takes the gate, or gives up when ctx ends first.
func (s *linkState) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // stopping: never take the gate for more work
	}
	select {
	case s.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *linkState) leave() { <-s.gate }

// handler is h as the session calls it: a HandlerFunc learns to list what
// it was handed.
func (s *linkState) handler(h Handler) Handler {
	if f, ok := h.(HandlerFunc); ok {
		return trackedFunc{f: f, set: &s.applied}
	}
	return h
}

type trackedFunc struct {
	f   HandlerFunc
	set *uuidSet
}

func (t trackedFunc) Apply(ctx context.Context, c Change) error {
	if err := t.f(ctx, c); err != nil {
		return err
	}
	t.set.record(c)
	return nil
}

func (t trackedFunc) Known(context.Context) ([]uuid.UUID, error) { return t.set.list(), nil }

// uuidSet is the set of entries a HandlerFunc holds, as far as this process
// has seen.
type uuidSet struct {
	mu  sync.Mutex
	ids map[uuid.UUID]struct{}
}

func (s *uuidSet) record(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[uuid.UUID]struct{}{}
	}
	if c.Op == Delete {
		delete(s.ids, c.UUID)
	} else {
		s.ids[c.UUID] = struct{}{}
	}
}

func (s *uuidSet) list() []uuid.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.ids))
}
