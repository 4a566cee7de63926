package sim

import (
	"fmt"
	"maps"
	"sync"
)

// Replica is the consumer's copy of the directory and its cookie. The cookie
// is durable only once flushed: a graceful close flushes it, and so does every
// FlushEvery-th change; Crash loses the rest, as a killed process would.
type Replica struct {
	FlushEvery int

	mu       sync.Mutex
	entries  map[string]string
	cookie   int // in memory: csn of the last applied change
	durable  int // on disk
	unsaved  int
	Applied  int // changes applied, full refreshes included
	Refreshs int // full refreshes
}

// NewReplica returns an empty replica with no cookie.
func NewReplica() *Replica { return &Replica{entries: map[string]string{}, FlushEvery: 10} }

// Entries is a copy of the replica's directory.
func (r *Replica) Entries() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.entries)
}

// Crash drops what was not flushed: the next session resumes from the
// durable cookie and replays what came after it.
func (r *Replica) Crash() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cookie = r.durable
	r.unsaved = 0
}

func (r *Replica) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.durable = r.cookie
	r.unsaved = 0
}

// refresh brings the replica up to the provider: a full reload without a
// cookie (present phase: whatever the provider lacks is deleted), else a
// replay of the change log after the cookie. Called under the provider's lock.
func (r *Replica) refresh(p *Provider, drop, fail bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fail {
		return fmt.Errorf("refresh: %w", ErrHandler)
	}
	if drop || r.cookie == 0 {
		r.entries = maps.Clone(p.entries)
		r.Refreshs++
	} else {
		for _, c := range p.log {
			if c.csn > r.cookie {
				r.applyLocked(c)
			}
		}
	}
	r.cookie = p.csn
	r.durable = r.cookie // a refresh ends with a cookie flush
	return nil
}

func (r *Replica) applyOne(c change, fail bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if fail {
		return fmt.Errorf("apply csn %d: %w", c.csn, ErrHandler)
	}
	r.applyLocked(c)
	r.cookie = c.csn
	if r.unsaved++; r.FlushEvery > 0 && r.unsaved >= r.FlushEvery {
		r.durable, r.unsaved = r.cookie, 0
	}
	return nil
}

func (r *Replica) applyLocked(c change) {
	if c.value == "" {
		delete(r.entries, c.dn)
	} else {
		r.entries[c.dn] = c.value
	}
	r.Applied++
}
