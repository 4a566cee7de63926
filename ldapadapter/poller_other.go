//go:build !linux

package ldapadapter

import "sync/atomic"

// Without epoll every link waits for its socket on its own goroutine.
type poller struct{}

type pollWait struct{ parked atomic.Bool }

func newPoller() *poller { return nil }

func (*poller) close() {}

func (*poller) usable() bool { return false }

func (*poller) wait(*tap) ([]byte, bool, error) { return nil, false, nil }

func (*poller) cancel(*tap) {}

func (*poller) drainLater(*tap) bool { return false }

func setLowat(uintptr, int) error { return nil }

func (*tap) unread() bool { return false }
