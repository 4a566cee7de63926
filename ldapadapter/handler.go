package ldapadapter

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/dn"
)

// Op is what a Change does to the consumer's copy.
type Op uint8

const (
	// Upsert adds the entry or replaces it whole (sync state add or modify:
	// the provider sends the complete entry either way).
	Upsert Op = iota + 1
	// Delete removes the entry with this UUID.
	Delete
)

func (o Op) String() string {
	switch o {
	case Upsert:
		return "upsert"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Change is one change to apply, keyed by the entry's entryUUID: a rename
// arrives as an Upsert of the same UUID under a new DN. The Entry's strings
// and byte values share the one buffer its message was read into: keep
// them as long as you like, but do not write into the byte values.
type Change struct {
	Op    Op
	UUID  uuid.UUID
	DN    string      // the new DN for Upsert; for Delete, when the provider sent it
	Entry *ldap.Entry // nil for Delete
	// Mods is what a modify did to the entry, when the link knows it: a
	// link following the provider's log (Config.LogBase) sets it on the
	// Upsert of every logged modify, with the modifications of attributes
	// the link replicates, in order. A whole-entry link whose Handler is an
	// EntryReader sets it on the Upserts of the persist stage, computed
	// against the stored entry (values deleted, then added, per attribute).
	// Entry is still the whole new entry, so a Handler may ignore Mods. Nil
	// for adds, deletes, logged renames and refreshes.
	Mods []Mod
}

// ModOp is the operation of one modification (RFC 4511 §4.6, and
// increment of RFC 4525).
type ModOp uint8

const (
	ModAdd ModOp = iota + 1
	ModDelete
	ModReplace
	ModIncrement
)

func (o ModOp) String() string {
	switch o {
	case ModAdd:
		return "add"
	case ModDelete:
		return "delete"
	case ModReplace:
		return "replace"
	case ModIncrement:
		return "increment"
	}
	return fmt.Sprintf("ModOp(%d)", uint8(o))
}

// Mod is one modification of one attribute. Values are raw bytes, exactly
// as the provider logged them; a delete or replace without values removes
// the attribute.
type Mod struct {
	Op     ModOp
	Attr   string
	Values [][]byte
}

// EntryReader is a Handler that can read back an entry of its copy: a
// link following the provider's log needs it to apply a logged modify or
// rename, which names only what changed. Entry returns nil, nil for a UUID
// the copy does not hold. The link calls it between changes, never during
// Apply, and does not modify what it returns.
type EntryReader interface {
	Entry(ctx context.Context, id uuid.UUID) (*ldap.Entry, error)
}

// Handler applies changes to one link's copy. Calls are serialized per link
// and come in the provider's order. Apply must be idempotent: after a crash,
// or a handler abandoned at Stop, the changes since the last saved cookie
// are sent again. A provider may fold them: 389-ds does not mention an
// entry added and deleted since the cookie, which a copy ahead of its
// cookie would keep, so unless the cookie store commits with the copy
// (TransactionalCookieStore) the link marks the stored cookie before the
// first change past it, and reloads from such a provider after a crash. ctx ends when the link stops: a handler that honours it
// lets Stop return at once; one that does not is abandoned after
// Config.StopTimeout, and no change of that link starts after Stop began.
type Handler interface {
	Apply(ctx context.Context, c Change) error
	// Known lists the UUIDs this link's copy holds, and nothing else: a
	// complete present phase, and any refresh without a cookie (a first
	// load, a lost cookie, e-syncRefreshRequired, a content change,
	// Link.Reload), names what still exists, and every other UUID Known
	// returns is deleted through Apply. A Handler therefore belongs to one
	// link; Consumer refuses to give two links the same one.
	Known(ctx context.Context) ([]uuid.UUID, error)
}

// EntryLocator is a Handler that can say which entry its copy holds at a
// DN. The link asks it for the search base's entry when the provider's base
// search hides entryUUID and nsUniqueId and no reload in this process has
// taught it: without it, a base replaced under a persistent search after a
// restart would go unseen. store.Link is one.
type EntryLocator interface {
	EntryAt(ctx context.Context, dn string) (id uuid.UUID, ok bool, err error)
}

// Counter is a Handler that can say how many entries its copy holds.
// The link asks it when a sync session begins, after the cookie store's
// Load (or its Save of no cookie, before a reload), when the copy holds
// exactly what those left committed. A copy that holds nothing then holds,
// when the refresh's present phase ends, only entries the refresh named:
// there is nothing to prune, so the link neither remembers the UUIDs the
// provider names nor asks Known for the list, which costs a scan of the
// whole copy right before refresh-done. store.Link is one.
type Counter interface {
	Len() (int, error)
}

// HandlerFunc adapts a function to a Handler, for mirroring into a system
// that cannot list what it holds. The link remembers, in memory, the UUIDs
// it handed the function, so deletions that a present phase implies reach
// it as Delete changes within one process. After a restart that memory is
// gone, which is why a HandlerFunc cannot be paired with a durable
// CookieStore (New refuses it): the link starts each process with a full
// load instead.
type HandlerFunc func(ctx context.Context, c Change) error

func (f HandlerFunc) Apply(ctx context.Context, c Change) error { return f(ctx, c) }
func (HandlerFunc) Known(context.Context) ([]uuid.UUID, error)  { return nil, nil } // tracked by the link

// MemoryStore is a Handler that keeps the copy in memory, for tests and for
// a process that can afford a full load at each start. Its copy dies with
// the process, so pair it with no CookieStore (the cookie then lives in
// memory too): a durable cookie with an empty copy would resume the stream
// and silently lack everything before it.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[uuid.UUID]*ldap.Entry
	applied int
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{entries: map[uuid.UUID]*ldap.Entry{}} }

func (s *MemoryStore) Apply(_ context.Context, c Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case c.Op == Upsert && c.Entry != nil:
		s.entries[c.UUID] = c.Entry
	case c.Op == Delete:
		delete(s.entries, c.UUID)
	default:
		return fmt.Errorf("memory store: cannot apply %s of %q without an entry", c.Op, c.DN)
	}
	s.applied++
	return nil
}

// Entry implements EntryReader.
func (s *MemoryStore) Entry(_ context.Context, id uuid.UUID) (*ldap.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[id], nil
}

func (s *MemoryStore) Known(context.Context) ([]uuid.UUID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.entries)), nil
}

// EntryAt implements EntryLocator.
func (s *MemoryStore) EntryAt(_ context.Context, name string) (uuid.UUID, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id uuid.UUID
	n := 0
	for u, e := range s.entries {
		if dn.Equal(e.DN, name) {
			id, n = u, n+1
		}
	}
	return id, n == 1, nil
}

// Snapshot returns the copy as DN → attribute → values, sorted values, for
// comparison with the provider.
func (s *MemoryStore) Snapshot() map[string]map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string][]string, len(s.entries))
	for _, e := range s.entries {
		out[e.DN] = EntryAttributes(e)
	}
	return out
}

// Applied counts the changes applied so far.
func (s *MemoryStore) Applied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// EntryAttributes flattens an entry into attribute → sorted values.
func EntryAttributes(e *ldap.Entry) map[string][]string {
	m := make(map[string][]string, len(e.Attributes))
	for _, a := range e.Attributes {
		v := slices.Clone(a.Values)
		slices.Sort(v)
		m[a.Name] = v
	}
	return m
}
