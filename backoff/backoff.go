// Package backoff computes retry delays: exponential growth with jitter and a
// cap, the connection-backoff scheme gRPC publishes. It holds no timer; the
// engine asks it for a duration and arms its own.
package backoff

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Config describes the schedule. Retry n (counting from 0) waits
// min(Initial*Multiplier^n, Max), then that value is spread by ±Jitter.
type Config struct {
	Initial    time.Duration
	Multiplier float64
	Jitter     float64 // fraction in [0, 1)
	Max        time.Duration
}

// Default is gRPC's connection-backoff: 1 s, ×1.6, ±20 %, at most 120 s.
var Default = Config{Initial: time.Second, Multiplier: 1.6, Jitter: 0.2, Max: 120 * time.Second}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid backoff")

// Validate reports a configuration that would produce nonsense delays.
func (c Config) Validate() error {
	switch {
	case c.Initial <= 0:
		return fmt.Errorf("%w: initial %v must be positive", ErrInvalid, c.Initial)
	case c.Multiplier < 1 || math.IsNaN(c.Multiplier) || math.IsInf(c.Multiplier, 0):
		return fmt.Errorf("%w: multiplier %v must be at least 1", ErrInvalid, c.Multiplier)
	case c.Jitter < 0 || c.Jitter >= 1 || math.IsNaN(c.Jitter):
		return fmt.Errorf("%w: jitter %v must be in [0, 1)", ErrInvalid, c.Jitter)
	case c.Max < c.Initial:
		return fmt.Errorf("%w: max %v below initial %v", ErrInvalid, c.Max, c.Initial)
	}
	return nil
}

// Delay returns the wait before retry number retries (0 for the first retry).
// rnd supplies the jitter; nil means the global source. Pass a seeded source
// for a reproducible schedule.
func (c Config) Delay(retries int, rnd *rand.Rand) time.Duration {
	if retries < 0 {
		retries = 0
	}
	d := float64(c.Initial)
	max := float64(c.Max)
	for i := 0; i < retries && d < max; i++ {
		d *= c.Multiplier
	}
	d = math.Min(d, max)
	if c.Jitter > 0 {
		var f float64
		if rnd != nil {
			f = rnd.Float64()
		} else {
			f = rand.Float64()
		}
		d *= 1 + c.Jitter*(2*f-1)
	}
	if d < 0 {
		return 0
	}
	return time.Duration(d)
}

// Bound is the longest Delay(retries) can return: the worst case a
// documentation table or a test bound may rely on.
func (c Config) Bound(retries int) time.Duration {
	z := c
	z.Jitter = 0
	return time.Duration(float64(z.Delay(retries, nil)) * (1 + c.Jitter))
}
