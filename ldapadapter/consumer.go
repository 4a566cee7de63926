package ldapadapter

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"

	"github.com/replink/replink/fsm"
)

// Errors of a Consumer's link management.
var (
	ErrUnknownLink   = errors.New("unknown link")
	ErrDuplicateLink = errors.New("link name already in use")
)

// Consumer holds the links of one consumer server, each to one provider.
// Links are added, started, stopped, reconfigured and removed one at a time
// at run time; the others are never disturbed.
type Consumer struct {
	opts     []fsm.Option
	connects *connectGates // shared by the links: set-ups per provider at once
	poller   *poller       // shared by the links: their idle sockets
	mu       sync.Mutex
	links    map[string]*Link
}

// NewConsumer returns a consumer with no links; opts apply to every link's
// machine.
func NewConsumer(opts ...fsm.Option) *Consumer {
	return &Consumer{opts: opts, connects: newConnectGates(connectsPerProvider), poller: newPoller(), links: map[string]*Link{}}
}

// Add creates a stopped link.
func (c *Consumer) Add(cfg LinkConfig) (*Link, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("%w: link name is empty", ErrInvalidConfig)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.links[cfg.Name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateLink, cfg.Name)
	}
	if err := c.checkHandlerLocked(cfg); err != nil {
		return nil, err
	}
	l, err := NewLink(cfg, c.opts...)
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", cfg.Name, err)
	}
	st := l.adapter.Load().state
	st.connects, st.poller = c.connects, c.poller // before the link can start
	c.links[cfg.Name] = l
	return l, nil
}

// checkHandlerLocked refuses a Handler that another link already uses: a
// full reload on one link deletes every entry it was not told about, and
// through a shared Handler that is the other link's whole copy. Each link
// needs a store of its own (or its own view of a shared database).
func (c *Consumer) checkHandlerLocked(cfg LinkConfig) error {
	h := cfg.LDAP.Handler
	if _, isFunc := h.(HandlerFunc); isFunc || h == nil || !reflect.ValueOf(h).Comparable() {
		return nil // a HandlerFunc is tracked per link; others cannot be compared
	}
	for name, l := range c.links {
		if name != cfg.Name && l.adapter.Load().cfg.Handler == h {
			return fmt.Errorf("%w: link %q uses the Handler of link %q: a reload on one would delete the other's entries; give each link its own", ErrInvalidConfig, cfg.Name, name)
		}
	}
	return nil
}

// Link returns the link called name.
func (c *Consumer) Link(name string) (*Link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.links[name]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownLink, name)
}

// Links returns every link, by name.
func (c *Consumer) Links() []*Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	ls := make([]*Link, 0, len(c.links))
	for _, l := range c.links {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].name < ls[j].name })
	return ls
}

// Start starts the named link.
func (c *Consumer) Start(ctx context.Context, name string) error {
	l, err := c.Link(name)
	if err != nil {
		return err
	}
	return l.Start(ctx)
}

// Stop stops the named link (case 2).
func (c *Consumer) Stop(ctx context.Context, name string) error {
	l, err := c.Link(name)
	if err != nil {
		return err
	}
	return l.Stop(ctx)
}

// Reconfigure applies cfg to the link called cfg.Name (case 2).
func (c *Consumer) Reconfigure(ctx context.Context, cfg LinkConfig) error {
	l, err := c.Link(cfg.Name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	err = c.checkHandlerLocked(cfg)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return l.Reconfigure(ctx, cfg)
}

// Remove stops the named link and forgets it.
func (c *Consumer) Remove(name string) error {
	c.mu.Lock()
	l, ok := c.links[name]
	delete(c.links, name)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownLink, name)
	}
	return l.Close()
}

// StartAll starts every link.
func (c *Consumer) StartAll(ctx context.Context) error {
	var errs []error
	for _, l := range c.Links() {
		if err := l.Start(ctx); err != nil {
			errs = append(errs, fmt.Errorf("link %q: %w", l.name, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown closes every link at once (case 1): each unbinds and saves its
// cookie. It returns when all are closed.
func (c *Consumer) Shutdown() error {
	c.mu.Lock()
	ls := make([]*Link, 0, len(c.links))
	for _, l := range c.links {
		ls = append(ls, l)
	}
	c.links = map[string]*Link{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); l.Close() }()
	}
	wg.Wait()
	c.poller.close()
	return nil
}
