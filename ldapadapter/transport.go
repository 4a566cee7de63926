package ldapadapter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// A transport is how one sync session brings the provider's changes to the
// copy: RFC 4533 content sync of the base (session.go, "syncrepl"), or the
// provider's accesslog followed by an RFC 4533 search of its own (delta.go,
// "log"). Everything around it is shared: the link's state machine (with
// keepalive, backoff and timers), the connection and its tap, the
// handler, the gate and the cookie machinery. A transport reports the
// events RFC 4533 defines (refresh-done on the sink, refresh-required and
// the failures as its result), so the state machine cannot tell them apart.
type transport interface {
	// run streams until the session ends, and returns the event that ended
	// it, or 0 (stopping, or the connection was lost: the tap reports that).
	run(ctx context.Context, t *tap) (replink.Event, error)
}

// The protocols a link reports (Link.Protocol).
const (
	ProtocolSyncrepl = "syncrepl"         // RFC 4533 content sync of the base
	ProtocolLog      = "log"              // delta-syncrepl: following the accesslog
	ProtocolRefresh  = "refresh"          // delta-syncrepl: first load of an empty copy
	ProtocolFallback = "fallback-refresh" // delta-syncrepl: a refresh after the log could not be followed
	ProtocolDirSync  = "dirsync"          // Active Directory's DirSync control (Config.Mode)
)

// transport picks the protocol of the link's configuration.
func (c *conn) transport(req fsm.SyncRequest) transport {
	s := &session{c: c, req: req, seen: map[uuid.UUID]struct{}{}, deferred: map[uuid.UUID]struct{}{}}
	if c.cfg.Mode == ModeDirSync {
		return newDirSyncSession(s)
	}
	if c.cfg.LogBase != "" {
		return newDeltaSession(s)
	}
	return s
}

// observed is what a link tells about its transport, for status pages and
// metrics: a few atomics, so the hot path pays next to nothing.
type observed struct {
	protocol  atomic.Pointer[string]
	received  atomic.Int64 // bytes of LDAP messages read from providers
	fallbackM sync.Mutex
	fallbacks map[FallbackCause]int64
	// pending is the fallback the next session must run, set by the
	// session that gave up on the log before it asks for a refresh.
	pending atomic.Pointer[FallbackError]
	// streak counts the fallbacks since the log last moved the copy on.
	streak atomic.Int64
}

func (o *observed) setProtocol(p string) { o.protocol.Store(&p) }

func (o *observed) countFallback(c FallbackCause) {
	o.fallbackM.Lock()
	defer o.fallbackM.Unlock()
	if o.fallbacks == nil {
		o.fallbacks = map[FallbackCause]int64{}
	}
	o.fallbacks[c]++
}

// FallbackCause says why a link following the provider's log fell back to
// a refresh of its base. The set is small and fixed: fit for a metric label.
type FallbackCause string

const (
	// FallbackStaleCookie: the log no longer covers the cookie (purged
	// past it, or never had it): the provider answered 4096.
	FallbackStaleCookie FallbackCause = "stale-cookie"
	// FallbackUnknownEntry: a logged modify or rename names an entry the
	// copy does not hold.
	FallbackUnknownEntry FallbackCause = "unknown-entry"
	// FallbackEntryExists: a logged add names an entry the copy holds.
	FallbackEntryExists FallbackCause = "entry-exists"
	// FallbackValueConflict: a logged modification does not fit the copy's
	// values (a value to add exists, one to delete does not, an attribute
	// to delete or increment is missing, a value is not a number).
	FallbackValueConflict FallbackCause = "value-conflict"
	// FallbackScope: the log cannot say what a write means for the copy:
	// an entry moved into the base (the log carries none of its
	// attributes), a write the link's filter may now select, a filter the
	// matcher cannot evaluate, or a logged operation it does not know.
	FallbackScope FallbackCause = "scope"
	// FallbackCopyAhead: the copy may hold writes past its cookie (the
	// link stopped before saving the cookie that covers them, with a
	// cookie store that does not commit with the copy): replaying the
	// log over them would apply them twice.
	FallbackCopyAhead FallbackCause = "copy-ahead"
)

// ErrFallback is wrapped by every FallbackError.
var ErrFallback = errors.New("the log cannot be followed here: falling back to a refresh")

// FallbackError is why a link gave up following the log for one refresh.
type FallbackError struct {
	Cause FallbackCause
	Err   error
}

func (e *FallbackError) Error() string {
	return fmt.Sprintf("%s (%s): %v", ErrFallback, e.Cause, e.Err)
}
func (e *FallbackError) Unwrap() []error {
	return []error{ErrFallback, e.Err}
}

func fallbackf(cause FallbackCause, format string, args ...any) *FallbackError {
	return &FallbackError{Cause: cause, Err: fmt.Errorf(format, args...)}
}

// Protocol is how the link replicates right now: "syncrepl", or for a
// link following the provider's log "log", "refresh" (first load) or
// "fallback-refresh"; a DirSync link "dirsync"; "" before its first session.
func (l *Link) Protocol() string {
	if p := l.adapter.Load().state.protocol.Load(); p != nil {
		return *p
	}
	return ""
}

// Fallbacks counts, by cause, the refreshes a link following the provider's
// log fell back to since it was made.
func (l *Link) Fallbacks() map[FallbackCause]int64 {
	o := &l.adapter.Load().state.observed
	o.fallbackM.Lock()
	defer o.fallbackM.Unlock()
	return maps.Clone(o.fallbacks)
}

// ReceivedBytes counts the bytes of the LDAP messages the link read from
// its providers, whatever the protocol: binds, searches and probes too.
func (l *Link) ReceivedBytes() int64 { return l.adapter.Load().state.received.Load() }
