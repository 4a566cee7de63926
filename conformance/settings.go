package conformance

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// apply sets the script's KEY=VALUE settings on cfg.
func applySettings(cfg *fsm.Config, settings map[string]string) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := settings[k]
		var err error
		dur := func(p *time.Duration) {
			*p, err = parseDuration(v)
		}
		switch k {
		case "mode":
			cfg.Mode, err = replink.ParseMode(v)
		case "refresh-interval":
			dur(&cfg.RefreshInterval)
		case "connect-timeout":
			dur(&cfg.ConnectTimeout)
		case "keepalive":
			if v == "off" {
				cfg.KeepaliveInterval, cfg.KeepaliveTimeout = 0, 0
			} else {
				dur(&cfg.KeepaliveInterval)
			}
		case "keepalive-timeout":
			dur(&cfg.KeepaliveTimeout)
		case "inactivity":
			dur(&cfg.InactivityTimeout)
		case "backoff-initial":
			dur(&cfg.Backoff.Initial)
		case "backoff-max":
			dur(&cfg.Backoff.Max)
		case "backoff-multiplier":
			cfg.Backoff.Multiplier, err = strconv.ParseFloat(v, 64)
		case "backoff-jitter":
			cfg.Backoff.Jitter, err = strconv.ParseFloat(v, 64)
		case "max-retries":
			cfg.MaxRetries, err = strconv.Atoi(v)
		default:
			return fmt.Errorf("unknown setting %q", k)
		}
		if err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	}
	return nil
}
