package fsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, fsm.DefaultConfig().Validate())
	for _, tc := range []struct {
		field string
		edit  func(*fsm.Config)
	}{
		{"KeepaliveInterval", func(c *fsm.Config) { c.KeepaliveInterval = -time.Second }},
		{"RefreshInterval", func(c *fsm.Config) { c.Mode, c.RefreshInterval = replink.RefreshOnly, 0 }},
		{"ConnectTimeout", func(c *fsm.Config) { c.ConnectTimeout = 0 }},
		{"KeepaliveTimeout", func(c *fsm.Config) { c.KeepaliveTimeout = 0 }},
		{"KeepaliveTimeout", func(c *fsm.Config) { c.KeepaliveInterval = 0 }},
		{"KeepaliveTimeout", func(c *fsm.Config) { c.KeepaliveTimeout = time.Hour }},
		{"InactivityTimeout", func(c *fsm.Config) { c.InactivityTimeout = c.KeepaliveInterval }},
		{"MaxRetries", func(c *fsm.Config) { c.MaxRetries = -1 }},
		{"HistorySize", func(c *fsm.Config) { c.HistorySize = -1 }},
		{"Mode", func(c *fsm.Config) { c.Mode = 9 }},
		{"Backoff", func(c *fsm.Config) { c.Backoff.Multiplier = 0.5 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c := fsm.DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			require.ErrorIs(t, err, fsm.ErrInvalidConfig)
			var ce *fsm.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.field, ce.Field)
		})
	}
}

func TestDetectionBound(t *testing.T) {
	c := fsm.DefaultConfig()
	c.KeepaliveInterval, c.KeepaliveTimeout = time.Second, time.Second
	require.Equal(t, 2*time.Second, c.DetectionBound())
	c.KeepaliveInterval, c.KeepaliveTimeout, c.InactivityTimeout = 0, 0, 10*time.Second
	require.Equal(t, 10*time.Second, c.DetectionBound())
}

// Validate reports every bad field at once, each a *ConfigError.
func TestConfigValidateReportsEveryField(t *testing.T) {
	c := fsm.DefaultConfig()
	c.ConnectTimeout, c.KeepaliveTimeout, c.MaxRetries = 0, time.Hour, -1
	err := c.Validate()
	require.ErrorIs(t, err, fsm.ErrInvalidConfig)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fields = append(fields, e.(*fsm.ConfigError).Field)
	}
	require.Equal(t, []string{"ConnectTimeout", "KeepaliveTimeout", "MaxRetries"}, fields)
}
