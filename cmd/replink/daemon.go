package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/feed"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
	"github.com/replink/replink/store"
)

// daemon wires the library's parts for `replink run`: one Consumer, a
// store file per distinct path, a handler per link, the feed, metrics, and
// the status server. It holds no replication logic of its own.
type daemon struct {
	cfgPath  string // "" when configured from flags: SIGHUP has nothing to re-read
	log      *slog.Logger
	consumer *ldapadapter.Consumer
	feed     *feed.Writer
	metrics  *metrics

	mu      sync.Mutex
	cfg     *config
	fileTop string // the file's own settings besides links, to tell a change on SIGHUP
	stores  map[string]*store.DB
	links   map[string]*running
}

// running is one link of the daemon.
type running struct {
	spec    *linkSpec
	link    *ldapadapter.Link
	h       *mirror.Handler
	unwatch func()
}

func newDaemon(cfg *config, cfgPath string, log *slog.Logger, f *feed.Writer) *daemon {
	d := &daemon{
		cfgPath: cfgPath, log: log, feed: f, cfg: cfg,
		stores: map[string]*store.DB{}, links: map[string]*running{},
	}
	// The machines' own transition logs would repeat the daemon's.
	quiet := slog.New(levelFloor{log.Handler(), slog.LevelError})
	d.consumer = ldapadapter.NewConsumer(fsm.WithLogger(quiet))
	d.metrics = newMetrics(d)
	return d
}

// start adds and starts every link of the configuration. A link that cannot
// be added (its store refuses it) is an error before any link connects.
func (d *daemon) start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var added []*running
	for _, spec := range d.cfg.Links {
		r, err := d.addLocked(spec)
		if err != nil {
			return err
		}
		added = append(added, r)
	}
	for _, r := range added {
		if err := r.link.Start(ctx); err != nil {
			return fmt.Errorf("link %q: %w", r.spec.Name, err)
		}
	}
	return nil
}

// addLocked opens the link's store and adds it, stopped, to the consumer.
func (d *daemon) addLocked(spec *linkSpec) (*running, error) {
	db, err := d.storeLocked(spec.Store)
	if err != nil {
		return nil, fmt.Errorf("%s: link %q: %w", spec.Where, spec.Name, err)
	}
	sl, err := db.Link(spec.Name, spec.Content)
	if err != nil {
		return nil, fmt.Errorf("%s: link %q: %w", spec.Where, spec.Name, err)
	}
	r := &running{spec: spec}
	changes, refreshed := d.metrics.changes.WithLabelValues(spec.Name), d.metrics.refreshed.WithLabelValues(spec.Name)
	r.h = mirror.NewHandler(sl, d.feed, func() {
		changes.Inc()
		if l := r.link; l != nil && l.State() == replink.Refreshing {
			refreshed.Inc()
		}
	})
	l, err := d.consumer.Add(d.linkConfig(spec, r.h))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Where, err)
	}
	r.link = l
	d.metrics.init(spec.Name)
	r.unwatch = l.Watch(func(tr fsm.Transition) { d.transition(r, tr) })
	d.links[spec.Name] = r
	return r, nil
}

func (d *daemon) linkConfig(spec *linkSpec, h *mirror.Handler) ldapadapter.LinkConfig {
	l := spec.LDAP
	l.Handler = h // keeps its own cookie, with the data
	l.Logger = d.log.With("link", spec.Name)
	return ldapadapter.LinkConfig{Name: spec.Name, LDAP: l, Machine: spec.Machine}
}

func (d *daemon) storeLocked(path string) (*store.DB, error) {
	if db, ok := d.stores[path]; ok {
		return db, nil
	}
	db, err := store.Open(path, nil)
	if err != nil {
		return nil, err
	}
	d.stores[path] = db
	return db, nil
}

// transition logs one line per transition and feeds the metrics.
func (d *daemon) transition(r *running, tr fsm.Transition) {
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
	d.log.Log(context.Background(), level, "transition", attrs...)
	d.metrics.observe(tr)
	if tr.To == replink.Connecting && tr.Peer != "" {
		d.metrics.onProvider(tr.Link, tr.Peer, r.link.Config().LDAP.URLs)
	}
}

// snapshot lists the running links, by name.
func (d *daemon) snapshot() []*running {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*running, 0, len(d.links))
	for _, r := range d.links {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

func (d *daemon) running(name string) (*running, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.links[name]
	return r, ok
}

// reload re-reads the configuration (SIGHUP, case 2): links that are new
// start, links that are gone stop, links whose settings changed reconnect
// with them; the others are not touched. A configuration with any error is
// rejected whole and the running links stay as they are.
func (d *daemon) reload(ctx context.Context) error {
	if d.cfgPath == "" {
		return errors.New("configured from flags: nothing to re-read")
	}
	cfg, err := loadConfig(d.cfgPath)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[string]*linkSpec{}
	for _, s := range cfg.Links {
		want[s.Name] = s
	}
	var errs []error
	for name, r := range d.links {
		if _, keep := want[name]; !keep {
			errs = append(errs, d.removeLocked(r))
			d.log.Info("link removed by the new configuration", "link", name)
		}
	}
	for _, spec := range cfg.Links {
		r, ok := d.links[spec.Name]
		switch {
		case !ok:
			nr, err := d.addLocked(spec)
			if err == nil {
				err = nr.link.Start(ctx)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			d.log.Info("link added by the new configuration", "link", spec.Name)
		case r.spec.fingerprint == spec.fingerprint:
			// unchanged: not touched
		case r.spec.Store != spec.Store || !r.spec.Content.Same(spec.Content):
			// Another store or content: another copy. Open it before
			// letting go of the old one, so a refusal leaves it running.
			if err := d.replaceLocked(ctx, r, spec); err != nil {
				errs = append(errs, err)
				continue
			}
			d.log.Info("link replaced by the new configuration", "link", spec.Name)
		default:
			if err := r.link.Reconfigure(ctx, d.linkConfig(spec, r.h)); err != nil {
				errs = append(errs, fmt.Errorf("link %q: %w", spec.Name, err))
				continue
			}
			r.spec = spec
			d.log.Info("link reconfigured", "link", spec.Name)
		}
	}
	if cfg.top() != d.fileTop {
		d.log.Warn("http, changes and log settings take effect at the next start")
	}
	d.fileTop = cfg.top()
	return errors.Join(errs...)
}

func (d *daemon) replaceLocked(ctx context.Context, r *running, spec *linkSpec) error {
	db, err := d.storeLocked(spec.Store)
	if err != nil {
		return fmt.Errorf("%s: link %q: %w", spec.Where, spec.Name, err)
	}
	if _, err := db.Link(spec.Name, spec.Content); err != nil {
		return fmt.Errorf("%s: link %q: %w", spec.Where, spec.Name, err)
	}
	if err := d.removeLocked(r); err != nil {
		return err
	}
	nr, err := d.addLocked(spec)
	if err != nil {
		return err
	}
	return nr.link.Start(ctx)
}

// storeOf is the store file a link's copy is in.
func (d *daemon) storeOf(r *running) *store.DB {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stores[r.spec.Store]
}

func (d *daemon) removeLocked(r *running) error {
	r.unwatch()
	delete(d.links, r.spec.Name)
	d.metrics.forget(r.spec.Name)
	if err := d.consumer.Remove(r.spec.Name); err != nil {
		return err
	}
	return nil
}

// shutdown stops every link (unbind, commit: case 1), then closes the feed
// and the stores. Each link is bounded by its stop timeout.
func (d *daemon) shutdown() error {
	start := time.Now()
	err := d.consumer.Shutdown()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.links {
		r.unwatch()
	}
	if d.feed != nil {
		err = errors.Join(err, d.feed.Close())
	}
	for _, db := range d.stores {
		err = errors.Join(err, db.Close())
	}
	d.log.Info("stopped", "links", len(d.links), "took", time.Since(start).Round(time.Millisecond))
	return err
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
