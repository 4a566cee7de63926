package fsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/backoff"
)

// Config is what one link's machine needs to decide. It holds durations and
// policies only; where the provider is lives in the adapter.
type Config struct {
	Mode replink.Mode

	// RefreshInterval is the wait between refreshOnly cycles.
	RefreshInterval time.Duration

	// ConnectTimeout bounds dial, TLS and bind together.
	ConnectTimeout time.Duration

	// KeepaliveInterval is how long the connection may be silent before a
	// probe is sent (less a lead of 1/16 to 1/8 of it, drawn per probe);
	// KeepaliveTimeout how long the probe may go unanswered. A silent
	// provider is detected at most KeepaliveInterval + KeepaliveTimeout
	// after its last byte, the lead being the room for a machine served
	// late. Zero interval disables it.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration

	// InactivityTimeout drops a connection on which nothing at all was read
	// for that long. It matters when keepalive is off (case 4); zero disables it.
	InactivityTimeout time.Duration

	// Backoff spaces reconnection attempts after a loss or a transient failure.
	Backoff backoff.Config

	// MaxRetries is how many failed connection attempts in a row are
	// allowed before the link fails for good; zero means no limit.
	MaxRetries int

	// HistorySize is how many recent transitions History keeps.
	HistorySize int
}

// DefaultConfig is a refreshAndPersist link with keepalive on.
func DefaultConfig() Config {
	return Config{
		Mode:              replink.RefreshAndPersist,
		RefreshInterval:   time.Minute,
		ConnectTimeout:    10 * time.Second,
		KeepaliveInterval: 30 * time.Second,
		KeepaliveTimeout:  10 * time.Second,
		Backoff:           backoff.Default,
		HistorySize:       32,
	}
}

// ErrInvalidConfig is wrapped by every [ConfigError].
var ErrInvalidConfig = errors.New("invalid configuration")

// ConfigError names the field that is wrong and why.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return "replink: invalid configuration: " + e.Field + ": " + e.Reason
}

func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Validate reports every nonsensical setting, each a *ConfigError, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RefreshInterval", c.RefreshInterval}, {"ConnectTimeout", c.ConnectTimeout},
		{"KeepaliveInterval", c.KeepaliveInterval}, {"KeepaliveTimeout", c.KeepaliveTimeout},
		{"InactivityTimeout", c.InactivityTimeout},
	} {
		if d.v < 0 {
			bad(d.name, "negative duration %v", d.v)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // the checks below assume no negative
	}
	switch {
	case c.Mode != replink.RefreshAndPersist && c.Mode != replink.RefreshOnly:
		bad("Mode", "unknown mode %d", c.Mode)
	case c.Mode == replink.RefreshOnly && c.RefreshInterval == 0:
		bad("RefreshInterval", "refreshOnly needs a positive refresh interval")
	}
	if c.ConnectTimeout == 0 {
		bad("ConnectTimeout", "must be positive: a provider that never answers would hold the link forever")
	}
	switch {
	case c.KeepaliveInterval > 0 && c.KeepaliveTimeout == 0:
		bad("KeepaliveTimeout", "must be positive when keepalive is on")
	case c.KeepaliveInterval == 0 && c.KeepaliveTimeout > 0:
		bad("KeepaliveTimeout", "set without a KeepaliveInterval")
	case c.KeepaliveInterval > 0 && c.KeepaliveTimeout > c.KeepaliveInterval:
		bad("KeepaliveTimeout", "%v exceeds the interval %v: a second probe would be due before the first is judged", c.KeepaliveTimeout, c.KeepaliveInterval)
	case c.InactivityTimeout > 0 && c.KeepaliveInterval > 0 && c.InactivityTimeout <= c.KeepaliveInterval+c.KeepaliveTimeout:
		bad("InactivityTimeout", "%v would cut the link before the keepalive (%v + %v) can judge it", c.InactivityTimeout, c.KeepaliveInterval, c.KeepaliveTimeout)
	}
	if c.MaxRetries < 0 {
		bad("MaxRetries", "negative")
	}
	if c.HistorySize < 0 {
		bad("HistorySize", "negative")
	}
	if err := c.Backoff.Validate(); err != nil {
		bad("Backoff", "%s", err.Error())
	}
	return errors.Join(errs...)
}

// DetectionBound is the longest a silent provider can go unnoticed in a
// connected state, or 0 when neither keepalive nor inactivity is on.
func (c Config) DetectionBound() time.Duration {
	if c.KeepaliveInterval > 0 {
		return c.KeepaliveInterval + c.KeepaliveTimeout
	}
	return c.InactivityTimeout
}
