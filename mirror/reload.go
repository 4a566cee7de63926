package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// Reload brings the running links to cfg.Links: links that are new start,
// links that are gone stop, links whose Fingerprint changed reconnect with
// their new settings (or move to their new store or content); the others
// are not touched. Everything that can fail is done first, before any
// running link is touched: every link validated, every new store opened
// and every new store link opened. If any of that fails, nothing changes
// and the error says why. Only a ctx that ends while the changes are
// applied can leave some of them undone (fsm.ErrNotApplied).
//
// cfg's Feed, Logger, HTTP and timeouts are those of New: Reload ignores
// them. A store that no link uses any more is closed.
func (m *Mirror) Reload(ctx context.Context, cfg Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("mirror: closed")
	}
	p, err := m.prepare(cfg.Links)
	if err != nil {
		return err
	}
	return m.applyLocked(ctx, p)
}

// plan is a reload prepared: everything opened, nothing applied.
type plan struct {
	unchanged   map[string]bool
	add         []*prepared // new links, and links moving to another store or content
	reconfigure []*prepared
	remove      []*link // links gone, and the old side of those moving
	opened      []*storeFile
}

type prepared struct {
	cfg LinkConfig
	fp  string
	key string
	// sl is the link's copy, checked against its content; nil for a link
	// the store does not hold yet, created when the plan is applied (only
	// an I/O error on a working file can fail that), and for a link
	// reconfigured in place.
	sl *store.Link
	db *store.DB
}

// rollback undoes what prepare opened: the stores, and the files it
// created for them.
func (m *Mirror) rollback(p *plan) {
	for _, s := range p.opened {
		s.db.Close()
		delete(m.stores, s.key)
		if s.created {
			os.Remove(s.key)
		}
	}
}

// prepare validates cfgs and opens what they need; m.mu is held (or m is
// not shared yet). On an error it has undone what it opened.
func (m *Mirror) prepare(cfgs []LinkConfig) (_ *plan, err error) {
	var errs []error
	seen := map[string]bool{}
	for _, lc := range cfgs {
		if err := checkLink(lc); err != nil {
			errs = append(errs, fmt.Errorf("%slink %q: %w", lc.where(), lc.Name, err))
		}
		if seen[lc.Name] {
			errs = append(errs, fmt.Errorf("%slink %q: the name is used twice", lc.where(), lc.Name))
		}
		seen[lc.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p := &plan{unchanged: map[string]bool{}}
	defer func() {
		if err != nil {
			m.rollback(p)
		}
	}()
	for _, lc := range cfgs {
		key, err := storeKey(lc.Store)
		if err != nil {
			return nil, fmt.Errorf("%slink %q: store %s: %w", lc.where(), lc.Name, lc.Store, err)
		}
		fp := lc.Fingerprint
		if fp == "" {
			fp = defaultFingerprint(lc)
		}
		fp += "\x00" + key
		pr := &prepared{cfg: lc, fp: fp, key: key}
		old, running := m.links[lc.Name]
		switch {
		case running && old.fp == fp:
			p.unchanged[lc.Name] = true
			continue
		case running && old.key == key && old.cfg.content().Same(lc.content()):
			p.reconfigure = append(p.reconfigure, pr)
			continue
		case running:
			p.remove = append(p.remove, old) // another store or content: another copy
		}
		if pr.db, pr.sl, err = m.openLink(p, lc, key); err != nil {
			return nil, err
		}
		p.add = append(p.add, pr)
	}
	for name, l := range m.links {
		if !seen[name] {
			p.remove = append(p.remove, l)
		}
	}
	return p, nil
}

// openLink opens the store at key if no link uses it yet, and lc's copy in
// it if the store holds one, refusing it if made from other content. A
// copy the store does not hold yet is left to create when the plan is
// applied, so that a rejected plan leaves the store as it was.
func (m *Mirror) openLink(p *plan, lc LinkConfig, key string) (*store.DB, *store.Link, error) {
	s, ok := m.stores[key]
	if !ok {
		var err error
		if s, err = openStore(lc.Store, key); err != nil {
			return nil, nil, fmt.Errorf("%slink %q: %w", lc.where(), lc.Name, err)
		}
		m.stores[key] = s
		p.opened = append(p.opened, s)
	}
	names, err := s.db.Links()
	if err != nil {
		return nil, nil, fmt.Errorf("%slink %q: %w", lc.where(), lc.Name, err)
	}
	if !slices.Contains(names, lc.Name) {
		return s.db, nil, nil
	}
	sl, err := s.db.Link(lc.Name, lc.content())
	if err != nil {
		return nil, nil, fmt.Errorf("%slink %q: %w", lc.where(), lc.Name, err)
	}
	return s.db, sl, nil
}

// checkLink is every check of a link that needs no store: the adapter's
// and the machine's own validation.
func checkLink(lc LinkConfig) error {
	if err := validName(lc.Name); err != nil {
		return err
	}
	if lc.Store == "" {
		return errors.New("no store file")
	}
	if lc.LDAP.Handler != nil || lc.LDAP.Cookies != nil {
		return errors.New("LDAP.Handler and LDAP.Cookies are the mirror's: leave them nil")
	}
	check := lc.LDAP
	check.Handler = ldapadapter.NewMemoryStore()
	if _, err := ldapadapter.New(check); err != nil {
		return err
	}
	return lc.Machine.Validate()
}

// applyLocked applies a prepared plan. What can fail now is only a link
// refusing a change because ctx ended.
func (m *Mirror) applyLocked(ctx context.Context, p *plan) error {
	var errs []error
	for _, l := range p.remove {
		errs = append(errs, m.removeLocked(l))
	}
	for _, pr := range p.reconfigure {
		l := m.links[pr.cfg.Name]
		if err := l.link.Reconfigure(ctx, m.linkConfig(pr.cfg, l.h)); err != nil {
			errs = append(errs, fmt.Errorf("link %q: %w", pr.cfg.Name, err))
			continue
		}
		l.cfg, l.fp = pr.cfg, pr.fp
		m.log.Info("link reconfigured", "link", pr.cfg.Name)
	}
	for _, pr := range p.add {
		l, err := m.addLocked(pr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if m.runCtx != nil {
			if err := l.link.Start(ctx); err != nil {
				errs = append(errs, fmt.Errorf("link %q: %w", pr.cfg.Name, err))
			}
			m.log.Info("link started by the new configuration", "link", pr.cfg.Name)
		}
	}
	m.closeUnusedLocked()
	return errors.Join(errs...)
}

func (m *Mirror) addLocked(pr *prepared) (*link, error) {
	if pr.sl == nil {
		sl, err := pr.db.Link(pr.cfg.Name, pr.cfg.content())
		if err != nil {
			return nil, fmt.Errorf("%slink %q: %w", pr.cfg.where(), pr.cfg.Name, err)
		}
		pr.sl = sl
	}
	l := &link{cfg: pr.cfg, fp: pr.fp, key: pr.key}
	changes, refreshed := m.metrics.changes.WithLabelValues(pr.cfg.Name), m.metrics.refreshed.WithLabelValues(pr.cfg.Name)
	l.h = newHandler(pr.sl, m.feed, func() {
		changes.Inc()
		if ll := l.link; ll != nil && ll.State() == replink.Refreshing {
			refreshed.Inc()
		}
	}, m.feedFailed)
	ll, err := m.consumer.Add(m.linkConfig(pr.cfg, l.h))
	if err != nil {
		return nil, fmt.Errorf("%s%w", pr.cfg.where(), err)
	}
	l.link = ll
	m.metrics.init(pr.cfg.Name)
	l.unwatch = ll.Watch(func(tr fsm.Transition) { m.transition(l, tr) })
	m.links[pr.cfg.Name] = l
	return l, nil
}

func (m *Mirror) removeLocked(l *link) error {
	l.unwatch()
	delete(m.links, l.cfg.Name)
	m.metrics.forget(l.cfg.Name)
	err := m.consumer.Remove(l.cfg.Name)
	m.log.Info("link removed", "link", l.cfg.Name)
	return err
}

// closeUnusedLocked closes the stores no link uses any more.
func (m *Mirror) closeUnusedLocked() {
	used := map[string]bool{}
	for _, l := range m.links {
		used[l.key] = true
	}
	for key, s := range m.stores {
		if !used[key] {
			if err := s.db.Close(); err != nil {
				m.log.Warn("closing a store no link uses", "store", s.db.Path(), "err", err)
			}
			delete(m.stores, key)
			m.log.Info("store closed: no link uses it", "store", s.db.Path())
		}
	}
}

func (m *Mirror) linkConfig(lc LinkConfig, h *Handler) ldapadapter.LinkConfig {
	l := lc.LDAP
	l.Handler = h // keeps its own cookie, with the data
	l.Logger = m.log.With("link", lc.Name)
	return ldapadapter.LinkConfig{Name: lc.Name, LDAP: l, Machine: lc.Machine}
}

// defaultFingerprint digests the settings a Go value can be compared by;
// a *tls.Config, a dialer or a logger count by identity.
func defaultFingerprint(lc LinkConfig) string {
	l := lc.LDAP
	l.Logger = nil
	h := sha256.New()
	fmt.Fprintf(h, "%#v\n%#v\n%q", l, lc.Machine, lc.Store)
	return hex.EncodeToString(h.Sum(nil))
}
