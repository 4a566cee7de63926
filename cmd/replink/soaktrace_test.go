package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
)

// soakTrace is what a failed soak prints to explain itself: the writer's
// operations, the faults as they were applied and lifted, and every call
// the library link made into its store (Apply, Load, Save, Known), each
// with the time since the soak started. On a difference, converged prints
// for each differing DN the lines of that entry's life (following its
// renames and moves, and its entryUUID in the library link's calls) among
// the faults; REPLINK_SOAK_TRACE=dir also writes the whole trace there.
type soakTrace struct {
	mu    sync.Mutex
	start time.Time
	lines []traceLine
}

type traceLine struct {
	at   time.Duration
	kind byte // W writer, F fault, L library link's store
	text string
}

func newSoakTrace() *soakTrace { return &soakTrace{start: time.Now()} }

func (t *soakTrace) add(kind byte, format string, args ...any) {
	if t == nil {
		return
	}
	l := traceLine{at: time.Since(t.start), kind: kind, text: fmt.Sprintf(format, args...)}
	t.mu.Lock()
	t.lines = append(t.lines, l)
	t.mu.Unlock()
}

func (t *soakTrace) snapshot() []traceLine {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lines)
}

func (l traceLine) String() string {
	return fmt.Sprintf("%9.3fs %c %s", l.at.Seconds(), l.kind, l.text)
}

// traceChange is one change as the trace shows it.
func traceChange(c ldapadapter.Change) string {
	return fmt.Sprintf("%s %s %q", c.Op, c.UUID, c.DN)
}

// traceCookie abbreviates a stored cookie to its provider part (slapd's
// rid and csn).
func traceCookie(c []byte) string {
	if c == nil {
		return "<none>"
	}
	s := string(c)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return fmt.Sprintf("%q", s)
}

var diffDN = regexp.MustCompile(`(?:missing|extra|differs) ([^;]+?)(?:;|$)`)

// explain returns, for each DN a diff names, the trace lines of that
// entry's life (its DNs through renames and moves, its UUIDs in the library
// link's calls) and every fault line, in time order.
func (t *soakTrace) explain(diff string) string {
	lines := t.snapshot()
	var out strings.Builder
	for _, m := range diffDN.FindAllStringSubmatch(diff, -1) {
		dns := map[string]bool{strings.ToLower(strings.TrimSpace(m[1])): true}
		ids := map[string]bool{}
		// Close the set over the lines: a writer line naming one of its
		// DNs names the others (rename a -> b), a library line naming one
		// of its DNs names its UUID.
		for range 10 {
			grew := false
			for _, l := range lines {
				low := strings.ToLower(l.text)
				if !mentions(low, dns, ids) {
					continue
				}
				for _, f := range quoted.FindAllStringSubmatch(l.text, -1) {
					if k := strings.ToLower(f[1]); !dns[k] && strings.Contains(k, "=") {
						dns[k], grew = true, true
					}
				}
				for _, f := range uuidRE.FindAllString(low, -1) {
					if !ids[f] {
						ids[f], grew = true, true
					}
				}
			}
			if !grew {
				break
			}
		}
		fmt.Fprintf(&out, "\n--- %s: its DNs %v, its UUIDs %v; its life among the faults:\n", m[0], keys(dns), keys(ids))
		for _, l := range lines {
			if l.kind == 'F' || mentions(strings.ToLower(l.text), dns, ids) {
				out.WriteString(l.String() + "\n")
			}
		}
	}
	return out.String()
}

var (
	quoted = regexp.MustCompile(`"([^"]*)"`)
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

func mentions(low string, dns, ids map[string]bool) bool {
	for d := range dns {
		if strings.Contains(low, `"`+d+`"`) {
			return true
		}
	}
	for id := range ids {
		if strings.Contains(low, id) {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// dump writes the whole trace and the binary's logs to dir, if set.
func (t *soakTrace) dump(dir string, binLogs []string) string {
	if dir == "" {
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, l := range t.snapshot() {
		b.WriteString(l.String() + "\n")
	}
	f := filepath.Join(dir, fmt.Sprintf("soak-%d.trace", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		return err.Error()
	}
	if err := os.WriteFile(f+".binlog", []byte(strings.Join(binLogs, "\n=== restart ===\n")), 0o644); err != nil {
		return err.Error()
	}
	return "trace written to " + f
}

// traced wraps the library link's store calls into the trace.
func (f *flaky) traceApply(c ldapadapter.Change, err error) {
	if err != nil {
		f.trace.add('L', "apply %s: FAILED: %v", traceChange(c), err)
		return
	}
	f.trace.add('L', "apply %s", traceChange(c))
}

func (f *flaky) Load() ([]byte, error) {
	c, err := f.Link.Load()
	f.trace.add('L', "load: cookie %s, err %v", traceCookie(c), err)
	return c, err
}

func (f *flaky) Save(c []byte) error {
	err := f.Link.Save(c)
	f.trace.add('L', "save %s: err %v", traceCookie(c), err)
	return err
}

func (f *flaky) Known(ctx context.Context) ([]uuid.UUID, error) {
	ids, err := f.Link.Known(ctx)
	f.trace.add('L', "known: %d entries, err %v", len(ids), err)
	return ids, err
}
