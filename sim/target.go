package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/replink/replink/fsm"
)

// Target runs conformance scripts against a simulated provider and replica.
type Target struct {
	P   *Provider
	R   *Replica
	cur adapter
}

// NewTarget returns a provider holding entries entries and an empty replica.
func NewTarget(entries int) *Target {
	return &Target{P: NewProvider(entries), R: NewReplica()}
}

// Adapter starts a new consumer process.
func (t *Target) Adapter() fsm.Adapter {
	t.cur = t.P.Adapter(t.R).(adapter)
	return t.cur
}

// Name is "sim", for scenario lines qualified with a target.
func (t *Target) Name() string { return "sim" }

// Fault injects a named fault into the provider or the network.
func (t *Target) Fault(name string, arg time.Duration) error { return t.P.Fault(name, arg) }

// Write makes n changes on the provider.
func (t *Target) Write(n int) error { t.P.Write(n); return nil }

// Delete removes the n entries that sort first.
func (t *Target) Delete(n int) error {
	dns := sortedKeys(t.P.Entries())
	if n > len(dns) {
		return fmt.Errorf("sim: delete %d of %d entries", n, len(dns))
	}
	for _, dn := range dns[:n] {
		t.P.Delete(dn)
	}
	return nil
}

// Crash kills the current consumer process: its connections close, nothing
// is flushed, and the replica forgets every change after its durable cookie.
func (t *Target) Crash() {
	t.P.mu.Lock()
	if t.cur.proc != nil {
		t.cur.proc.dead = true
	}
	for c := range t.P.conns {
		if c.proc == t.cur.proc {
			c.closed = true
			delete(t.P.conns, c)
		}
	}
	t.P.mu.Unlock()
	t.R.Crash()
}

// InSync compares the replica with the provider.
func (t *Target) InSync() error { return Diff(t.P.Entries(), t.R.Entries()) }

// Diff describes how got differs from want, or returns nil.
func Diff(want, got map[string]string) error {
	var d []string
	for _, dn := range sortedKeys(want) {
		if g, ok := got[dn]; !ok {
			d = append(d, "missing "+dn)
		} else if g != want[dn] {
			d = append(d, fmt.Sprintf("%s = %q, want %q", dn, g, want[dn]))
		}
	}
	for _, dn := range sortedKeys(got) {
		if _, ok := want[dn]; !ok {
			d = append(d, "extra "+dn)
		}
	}
	if len(d) == 0 {
		return nil
	}
	if len(d) > 5 {
		d = append(d[:5], fmt.Sprintf("and %d more", len(d)-5))
	}
	return fmt.Errorf("%d entries vs %d: %s", len(got), len(want), strings.Join(d, "; "))
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
