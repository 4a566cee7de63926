package ldapadapter

import (
	"errors"
	"fmt"
	"sync"
)

// DeletionGuard keeps a misbehaving provider from emptying the copy. A
// refresh, or the present phase that ends one, that would delete more than
// Share of the copy, and more than Floor entries, applies none of its
// deletions: the link goes to Failed on deletions-held, with a
// *DeletionsHeldError as the cause, and waits until an admin approves them
// (Link.ApproveDeletions) or raises the limit (Link.Reconfigure).
//
// The defaults, a fifth of the copy beyond 100 entries, are far above what
// a directory loses between two refreshes in ordinary use (deletions then
// arrive one by one in the persist stage, which the guard never counts),
// and far below what the accidents look like: an ACL change that hides a
// branch from the replication identity, a wrong base or filter, a provider
// restored empty, which delete most or all of the copy. A copy of 100
// entries or fewer is cheap to reload and is never held.
type DeletionGuard struct {
	// Share of the copy one refresh may delete, in (0, 1]. Zero means
	// the default, 0.2; negative turns the guard off.
	Share float64
	// Floor is how many deletions one refresh may always make. Zero means
	// the default, 100; negative means none.
	Floor int
}

func (g DeletionGuard) withDefaults() (DeletionGuard, error) {
	switch {
	case g.Share == 0:
		g.Share = 0.2
	case g.Share > 1:
		return g, fmt.Errorf("%w: DeletionGuard.Share %v: want a share of the copy between 0 and 1 (negative: off)", ErrInvalidConfig, g.Share)
	}
	switch {
	case g.Floor == 0:
		g.Floor = 100
	case g.Floor < 0:
		g.Floor = 0
	}
	return g, nil
}

// ErrDeletionsHeld is wrapped by *DeletionsHeldError.
var ErrDeletionsHeld = errors.New("deletions held by the deletion guard")

// DeletionsHeldError is the cause of deletions-held: how many entries the
// refresh would have deleted, of how large a copy, against which guard.
type DeletionsHeldError struct {
	Deletions int
	Copy      int
	Guard     DeletionGuard
}

func (e *DeletionsHeldError) Error() string {
	return fmt.Sprintf("%s: the refresh would delete %d of the %d entries in the copy (%.0f%%), more than the guard allows (%.0f%% of the copy beyond %d entries); none was applied: approve them, or raise the limit, if the provider is right",
		ErrDeletionsHeld, e.Deletions, e.Copy, 100*float64(e.Deletions)/float64(max(e.Copy, 1)), 100*e.Guard.Share, e.Guard.Floor)
}

func (e *DeletionsHeldError) Unwrap() error { return ErrDeletionsHeld }

// ErrNothingHeld is returned by Link.ApproveDeletions when the link holds no
// deletions.
var ErrNothingHeld = errors.New("no deletions are held")

// heldDeletions is a link's guard state, shared by its connections: what
// is held, and how many deletions an admin approved for the next refresh.
type heldDeletions struct {
	mu       sync.Mutex
	held     *DeletionsHeldError
	approved int
}

// hold records deletions the guard held.
func (h *heldDeletions) hold(e *DeletionsHeldError) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held, h.approved = e, 0
}

// approve reports whether n deletions were approved; approval is spent
// either way, so it covers one refresh only, and no more than was shown.
func (h *heldDeletions) approve(n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := h.approved > 0 && n <= h.approved
	h.approved = 0
	if ok {
		h.held = nil
	}
	return ok
}

// grant approves what is held, for the next refresh.
func (h *heldDeletions) grant() (*DeletionsHeldError, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held == nil {
		return nil, ErrNothingHeld
	}
	h.approved = h.held.Deletions
	return h.held, nil
}

// current is what is held now, or nil.
func (h *heldDeletions) current() *DeletionsHeldError {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}
