package ldapadapter

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// LinkConfig is everything one link needs: the provider side (LDAP) and the
// machine's timers and mode (Machine).
type LinkConfig struct {
	Name    string
	LDAP    Config
	Machine fsm.Config
}

// Link is one replication link: a state machine driving an LDAP adapter that
// applies changes through a Handler and keeps its cookie in a CookieStore.
// Its methods are safe for concurrent use.
type Link struct {
	name    string
	m       *fsm.Machine
	mu      sync.Mutex // serializes Reconfigure and Reload
	adapter atomic.Pointer[Adapter]
}

// NewLink validates cfg and returns a stopped link. Close releases it.
func NewLink(cfg LinkConfig, opts ...fsm.Option) (*Link, error) {
	a, err := New(cfg.LDAP)
	if err != nil {
		return nil, err
	}
	l := &Link{name: cfg.Name}
	l.adapter.Store(a)
	opts = append([]fsm.Option{fsm.WithName(cfg.Name), fsm.WithLogger(a.cfg.Logger)}, opts...)
	m, err := fsm.New(cfg.Machine, a, opts...)
	if err != nil {
		return nil, err
	}
	l.m = m
	return l, nil
}

// Name is the link's name.
func (l *Link) Name() string { return l.name }

// Start connects the link (from Stopped or Failed).
func (l *Link) Start(ctx context.Context) error { return l.m.Start(ctx) }

// Stop unbinds, saves the cookie and leaves the link Stopped, leaving every
// other link alone (case 2).
func (l *Link) Stop(ctx context.Context) error { return l.m.Stop(ctx) }

// Reconfigure validates cfg and applies it: a running link reconnects with
// it at once, a stopped link keeps it for its next start. The name stays.
// It happens whole or not at all: nil means applied; on an error (invalid
// configuration, ctx ended before the link took it: fsm.ErrNotApplied)
// the link runs as before.
//
// If the new configuration replicates other content (base, scope, filter or
// attributes), the stored cookie no longer applies (RFC 4533 §3.1): the
// next sync drops it, reloads in full and prunes what is out of scope.
func (l *Link) Reconfigure(ctx context.Context, cfg LinkConfig) error {
	l.mu.Lock() // one reconfiguration at a time, so the adapter in force is the last applied
	defer l.mu.Unlock()
	// The new adapter shares the link's gate, reload flag, in-memory
	// cookie and what it applied.
	a, err := newAdapter(cfg.LDAP, l.adapter.Load().state)
	if err != nil {
		return err
	}
	if err := cfg.Machine.Validate(); err != nil {
		return err
	}
	if err := l.m.ReconfigureAdapter(ctx, cfg.Machine, a); err != nil {
		return err
	}
	l.adapter.Store(a)
	return nil
}

// Reload drops the link's cookie and reloads the whole content from the
// provider, pruning whatever the copy holds that the provider no longer
// has. It is the remedy when the provider cannot serve the cookie and says
// so (ErrProviderBehind after a restore from backup), or does not say so
// (see the package documentation). A running link reconnects at once; a
// stopped or failed one reloads at its next start.
func (l *Link) Reload(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.adapter.Load().state.reload.Store(true)
	switch l.m.State() {
	case replink.Stopped, replink.Failed:
		return nil
	}
	return l.m.ReconfigureAdapter(ctx, l.m.Config(), nil)
}

// HeldDeletions is what the deletion guard holds, or nil: the link is then
// Failed on deletions-held until ApproveDeletions, or a Reconfigure that
// raises the limit.
func (l *Link) HeldDeletions() *DeletionsHeldError { return l.adapter.Load().state.current() }

// ApproveDeletions lets the next refresh apply the deletions the guard
// held, and starts the link again. The approval covers no more deletions
// than were held: a refresh that would delete more is held anew, with the
// new numbers. ErrNothingHeld means there was nothing to approve.
func (l *Link) ApproveDeletions(ctx context.Context) error {
	held, err := l.adapter.Load().state.grant()
	if err != nil {
		return err
	}
	l.adapter.Load().cfg.Logger.Warn("deletions approved", "deletions", held.Deletions, "copy", held.Copy)
	if l.m.State() == replink.Failed {
		return l.m.Start(ctx)
	}
	return nil
}

// Provider is the provider URL the link is connected to, or will try next.
func (l *Link) Provider() string { return l.adapter.Load().Provider() }

// Config is the link's configuration in force.
func (l *Link) Config() LinkConfig {
	return LinkConfig{Name: l.name, LDAP: l.adapter.Load().cfg, Machine: l.m.Config()}
}

// State is the link's current state.
func (l *Link) State() replink.State { return l.m.State() }

// Watch calls fn with every transition from now on, in order (see
// fsm.Machine.Observe); the returned function stops it.
func (l *Link) Watch(fn func(fsm.Transition)) (cancel func()) { return l.m.Observe(fn) }

// History returns the link's recent transitions, oldest first.
func (l *Link) History() []fsm.Transition { return l.m.History() }

// WaitFor blocks until the link is in one of states, or ctx ends.
func (l *Link) WaitFor(ctx context.Context, states ...replink.State) (replink.State, error) {
	ch := make(chan replink.State, 1)
	in := func(s replink.State) bool {
		for _, w := range states {
			if s == w {
				return true
			}
		}
		return false
	}
	cancel := l.m.Observe(func(t fsm.Transition) {
		if in(t.To) {
			select {
			case ch <- t.To:
			default:
			}
		}
	})
	defer cancel()
	if s := l.m.State(); in(s) {
		return s, nil
	}
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		return l.m.State(), ctx.Err()
	}
}

// Close shuts the link down (unbind, cookie saved) and releases it.
func (l *Link) Close() error { return l.m.Close() }
