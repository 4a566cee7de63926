package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// Config is a whole mirror: its links, where their changes are fed, and
// how its HTTP handler guards the copy.
type Config struct {
	Links []LinkConfig
	// Feed receives every change before the store commits it (nil: no
	// feed). The Mirror owns it from New on: it closes it when Run ends.
	Feed Feed
	// Logger receives one line per transition and per admin action
	// (default: slog.Default()).
	Logger *slog.Logger
	// HTTP says how Handler guards the status and admin surface.
	HTTP HTTPConfig
	// ShutdownTimeout bounds what Run does after the links stopped (each
	// within its own StopTimeout): closing the feed and the stores. A feed
	// whose reader stalls is abandoned after it. Default 5s.
	ShutdownTimeout time.Duration
	// StoreCheckInterval is how often each store file is checked for
	// having been deleted or replaced under the mirror. Default 2s;
	// negative disables the check.
	StoreCheckInterval time.Duration
}

// LinkConfig is one link of a Mirror: where its provider is and what it
// replicates (LDAP), its machine's timers (Machine), and its store file.
type LinkConfig struct {
	Name string
	// LDAP is the adapter's configuration; Handler and Cookies are the
	// mirror's (the link's copy in Store) and must be left nil.
	LDAP    ldapadapter.Config
	Machine fsm.Config
	// Store is the bbolt file holding the link's copy. Links naming the
	// same file (however spelled) share it, each in buckets of its own.
	Store string
	// Fingerprint changes whenever a setting of the link does, secrets and
	// the contents of TLS files included: Reload reconnects a link whose
	// fingerprint changed and leaves the others alone. Empty: the mirror
	// derives one from LDAP, Machine and Store (a *tls.Config by identity).
	Fingerprint string
	// Source says where the link was configured ("replink.yaml:12"), to
	// prefix errors about it. Optional.
	Source string
}

// content is what the link's copy is made from, as the store binds it.
func (lc LinkConfig) content() store.Content {
	scope := "sub"
	if lc.LDAP.Scope == 1 { // ldap.ScopeSingleLevel
		scope = "one"
	}
	filter := lc.LDAP.Filter
	if filter == "" {
		filter = "(objectClass=*)"
	}
	return store.Content{BaseDN: lc.LDAP.BaseDN, Scope: scope, Filter: filter, Attributes: lc.LDAP.Attributes}
}

func (lc LinkConfig) where() string {
	if lc.Source != "" {
		return lc.Source + ": "
	}
	return ""
}

// Feed is where a Mirror writes every change ahead of the store: Write
// queues a line, Sync makes every queued line durable (a commit happens
// only after it succeeded), Close syncs and releases it. *feed.Writer is
// one; an implementation must be safe for concurrent use by every link.
// A Feed that also has SyncFor(link string) error (as *feed.Writer does)
// has it called instead of Sync, so that it can fail one link's commit.
// An error wrapping feed.ErrReaderGone (or EPIPE) ends Run.
type Feed interface {
	Write(link string, c ldapadapter.Change, position []byte) error
	Sync() error
	Close() error
}

// Mirror keeps durable copies of LDAP subtrees over syncrepl: one link
// per subtree, each committed with its cookie to a bbolt store, changes
// written to an optional feed first, and status, metrics and admin
// actions served by Handler.
type Mirror struct {
	log      *slog.Logger
	consumer *ldapadapter.Consumer
	feed     Feed
	metrics  *metrics
	guard    *guard
	shutdown time.Duration
	check    time.Duration
	fatal    chan error // the feed's reader is gone: Run ends with it

	mu      sync.Mutex
	stores  map[string]*storeFile // by storeKey
	links   map[string]*link
	runCtx  context.Context // set while Run runs: links added by Reload start
	closed  bool
	started bool
}

// link is one link of the mirror.
type link struct {
	cfg     LinkConfig
	fp      string
	key     string // its store's key
	link    *ldapadapter.Link
	h       *Handler
	unwatch func()

	mu    sync.Mutex
	fault error // the store went away under the link: it is Failed for good
}

func (l *link) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fault
}

// New validates cfg, opens every store and adds every link, stopped: a
// store refusing a link (another content) is an error before anything
// connects. Run starts them.
func New(cfg Config) (*Mirror, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Mirror{
		log: log, feed: cfg.Feed, shutdown: cfg.ShutdownTimeout, check: cfg.StoreCheckInterval,
		fatal:  make(chan error, 1),
		stores: map[string]*storeFile{}, links: map[string]*link{},
	}
	if m.shutdown <= 0 {
		m.shutdown = 5 * time.Second
	}
	if m.check == 0 {
		m.check = 2 * time.Second
	}
	g, err := newGuard(cfg.HTTP)
	if err != nil {
		return nil, err
	}
	m.guard = g
	// The machines' own transition logs would repeat the mirror's.
	quiet := slog.New(levelFloor{log.Handler(), slog.LevelError})
	m.consumer = ldapadapter.NewConsumer(fsm.WithLogger(quiet))
	m.metrics = newMetrics(m)
	p, err := m.prepare(cfg.Links)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.applyLocked(context.Background(), p); err != nil {
		return nil, err
	}
	return m, nil
}

// Run starts every link and serves them until ctx ends, then stops them
// all (unbind, commit: each within its StopTimeout), closes the feed and
// the stores (within ShutdownTimeout) and returns. A feed whose reader is
// gone (a closed pipe) ends Run early with that error. Run may be called
// once.
func (m *Mirror) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.started || m.closed {
		m.mu.Unlock()
		return errors.New("mirror: Run called twice")
	}
	m.started = true
	m.runCtx = ctx
	var errs []error
	for _, l := range m.sortedLocked() {
		if err := l.link.Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("link %q: %w", l.cfg.Name, err))
		}
	}
	m.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return errors.Join(err, m.Close())
	}
	done := make(chan struct{})
	checked := make(chan struct{})
	go func() { defer close(checked); m.watchStores(done) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-m.fatal:
	}
	close(done)
	<-checked
	return errors.Join(err, m.Close())
}

// Close stops every link, then closes the feed and the stores. Run calls
// it; call it yourself only for a Mirror that was never run.
func (m *Mirror) Close() error {
	start := time.Now()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	err := m.consumer.Shutdown() // bounded by each link's StopTimeout
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.links {
		l.unwatch()
	}
	if m.feed != nil {
		err = errors.Join(err, m.closeFeed())
	}
	for _, s := range m.stores {
		err = errors.Join(err, s.db.Close())
	}
	m.log.Info("stopped", "links", len(m.links), "took", time.Since(start).Round(time.Millisecond))
	return err
}

// ErrFeedStalled is returned by Run when the feed did not close within
// ShutdownTimeout (its reader stopped reading): it was abandoned.
var ErrFeedStalled = errors.New("mirror: the feed did not close in time (its reader is stalled); abandoned")

func (m *Mirror) closeFeed() error {
	done := make(chan error, 1)
	go func() { done <- m.feed.Close() }()
	t := time.NewTimer(m.shutdown)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		m.log.Error("the feed did not close in time: its reader is stalled; abandoning it", "after", m.shutdown)
		return ErrFeedStalled
	}
}

func (m *Mirror) sortedLocked() []*link {
	out := make([]*link, 0, len(m.links))
	for _, l := range m.links {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

// snapshot lists the links, by name.
func (m *Mirror) snapshot() []*link {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sortedLocked()
}

func (m *Mirror) lookup(name string) (*link, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[name]
	return l, ok
}

// transition logs one line per transition and feeds the metrics.
func (m *Mirror) transition(l *link, tr fsm.Transition) {
	level := slog.LevelInfo
	switch {
	case tr.To == replink.Failed:
		level = slog.LevelError
	case tr.Cause != nil:
		level = slog.LevelWarn
	}
	attrs := []any{"link", tr.Link, "from", tr.From, "to", tr.To, "event", tr.Event, "case", tr.Case}
	if tr.Peer != "" {
		attrs = append(attrs, "provider", tr.Peer)
	}
	if tr.Cause != nil {
		attrs = append(attrs, "cause", tr.Cause)
	}
	m.log.Log(context.Background(), level, "transition", attrs...)
	m.metrics.observe(tr)
	if l.failure() != nil { // stopped because its store went away
		m.metrics.setState(tr.Link, replink.Failed)
	}
	if tr.To == replink.Connecting && tr.Peer != "" {
		m.metrics.onProvider(tr.Link, tr.Peer, l.link.Config().LDAP.URLs)
	}
}

// feedFailed is told of every failed feed write: a reader that is gone
// ends Run, since no change can be committed any more.
func (m *Mirror) feedFailed(link string, err error) {
	if !readerGone(err) {
		return
	}
	select {
	case m.fatal <- fmt.Errorf("link %q: the change feed's reader is gone: %w", link, err):
		m.log.Error("the change feed's reader is gone; stopping", "link", link, "err", err)
	default:
	}
}

// levelFloor passes on only records at or above min.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(n), h.min}
}

// validName is a link name usable in a URL path and a log line.
func validName(n string) error {
	if n == "" {
		return errors.New("a link needs a name")
	}
	if strings.ContainsAny(n, "/ \t") {
		return fmt.Errorf("%q: a name has no spaces or slashes", n)
	}
	return nil
}
