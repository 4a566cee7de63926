package modelcheck

import (
	"fmt"
	"strings"
)

// Shrink looks for a shorter list of the generated steps that still fails
// the same check, by delta debugging over the step indices, within budget
// runs. run runs one Config in a fresh bubble.
func Shrink(cfg Config, first *Failure, run func(Config) error, budget int) ([]int, *Failure) {
	_, steps := Generate(cfg.Seed, cfg.Steps, cfg.Features)
	items := cfg.Keep
	if items == nil {
		for i := range steps {
			items = append(items, i)
		}
	}
	best := first
	fails := func(keep []int) bool {
		if budget <= 0 {
			return false
		}
		budget--
		c := cfg
		c.Keep = keep
		var f *Failure
		if err := run(c); err != nil && asFailure(err, &f) && f.Check == first.Check {
			best = f
			return true
		}
		return false
	}
	n := 2
	for len(items) >= 2 && budget > 0 {
		chunk := (len(items) + n - 1) / n
		reduced := false
		for start := 0; start < len(items); start += chunk {
			rest := append(append([]int{}, items[:start]...), items[min(start+chunk, len(items)):]...)
			if fails(rest) {
				items, n, reduced = rest, max(n-1, 2), true
				break
			}
		}
		if !reduced {
			if n >= len(items) {
				break
			}
			n = min(2*n, len(items))
		}
	}
	return items, best
}

func asFailure(err error, f **Failure) bool {
	x, ok := err.(*Failure)
	*f = x
	return ok
}

// Describe prints the steps of keep, one a line.
func Describe(cfg Config, keep []int) string {
	setup, steps := Generate(cfg.Seed, cfg.Steps, cfg.Features)
	var b strings.Builder
	fmt.Fprintf(&b, "setup: %s\n", setup)
	for _, i := range keep {
		fmt.Fprintf(&b, "  %3d %s\n", i, steps[i])
	}
	return b.String()
}
