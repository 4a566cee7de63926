//go:build !linux

package ldapadapter

import "time"

// setUserTimeout is a no-op where TCP_USER_TIMEOUT does not exist; the LDAP
// keepalive still bounds detection.
func setUserTimeout(uintptr, time.Duration) error { return nil }
