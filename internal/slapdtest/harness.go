package slapdtest

import (
	"errors"
	"fmt"
	"os"
)

// ErrSkipped is returned by Harness.Run when the harness asked to skip
// (slapd missing, say).
var ErrSkipped = errors.New("skipped")

// Harness lets the test harness run in a command (the tour, the demo, the
// benchmarks): Fatal and Skip end the function given to Run with an error,
// Cleanup runs at Close.
type Harness struct {
	cleanups []func()
	dirs     []string
}

type harnessStop struct{ err error }

func (*Harness) Helper()                           {}
func (*Harness) Fatal(args ...any)                 { panic(harnessStop{errors.New(fmt.Sprint(args...))}) }
func (*Harness) Fatalf(format string, args ...any) { panic(harnessStop{fmt.Errorf(format, args...)}) }
func (*Harness) Skip(args ...any) {
	panic(harnessStop{fmt.Errorf("%w: %s", ErrSkipped, fmt.Sprint(args...))})
}
func (h *Harness) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }

// TempDir makes a directory that Close removes.
func (h *Harness) TempDir() string {
	d, err := os.MkdirTemp("", "replink-harness-")
	if err != nil {
		h.Fatal(err)
	}
	h.dirs = append(h.dirs, d)
	return d
}

// Run calls f and turns a Fatal or Skip inside it into an error.
func (h *Harness) Run(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(harnessStop)
			if !ok {
				panic(r)
			}
			err = s.err
		}
	}()
	f()
	return nil
}

// Close runs the cleanups, last first, and removes the directories.
func (h *Harness) Close() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
	for _, d := range h.dirs {
		os.RemoveAll(d)
	}
	h.dirs = nil
}
