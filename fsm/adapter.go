package fsm

import (
	"context"
	"time"

	"github.com/replink/replink"
)

// Adapter is the seam between the machine and the network. The machine calls
// it from its own goroutine; every method must return promptly and report
// outcomes later by posting events on the [Sink] it was given.
type Adapter interface {
	// Connect starts dialing, TLS and bind for one connection and returns at
	// once. The connection reports connected, connect-failed,
	// connect-refused or exception on sink, and later the events of its sync
	// session.
	Connect(ctx context.Context, sink Sink) Conn
}

// Conn is one connection attempt and, once bound, the sync session on it.
type Conn interface {
	// Sync starts the sync search, or starts it again after
	// refresh-required. It reports refresh-done, refresh-required and the
	// loss events on the sink.
	Sync(req SyncRequest)

	// Probe sends one keepalive request on the same connection. The answer
	// needs no reporting: any byte read moves LastRead.
	Probe()

	// LastRead is when the provider was last heard from: the last byte
	// read, or the connection's start. An adapter whose consumer is the
	// bottleneck (bytes are waiting to be processed) reports now: the
	// provider is not silent, we are slow. Called from the machine's
	// goroutine; must be cheap and must not block.
	LastRead() time.Time

	// Close ends the connection. graceful (stop, shutdown) asks for an
	// unbind and a cookie flush within a bounded time; otherwise the socket
	// is dropped. After Close, events the connection posts are discarded.
	Close(graceful bool)
}

// Persister is implemented by a Conn that can shed what only connecting
// and refreshing needed. The machine calls Persisting, from its own
// goroutine, each time it enters Persisting on that connection; like every
// Conn method it must return promptly.
type Persister interface {
	Persisting()
}

// SyncRequest is what the machine asks of a sync session.
type SyncRequest struct {
	Mode replink.Mode
	// DropCookie asks for a full refresh (after e-syncRefreshRequired).
	DropCookie bool
}

// Sink receives the events of one connection. Posting never blocks. Events
// posted after the machine dropped that connection are discarded, so an
// adapter need not guard against late reports.
type Sink interface {
	Post(ev replink.Event, cause error)
}
