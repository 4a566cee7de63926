package main

import (
	"errors"
	"fmt"
	"net"
)

// ErrExternalHTTP refuses to serve status and admin actions beyond this
// machine without an explicit http-allow-external.
var ErrExternalHTTP = errors.New("refusing to serve HTTP on a non-loopback address (its admin actions have no authentication); set http-allow-external to insist")

// listenHTTP binds addr, loopback only unless allowed.
func listenHTTP(addr string, allowExternal bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", addr, err)
	}
	if !allowExternal && !loopback(host) {
		return nil, fmt.Errorf("--http %q: %w", addr, ErrExternalHTTP)
	}
	return net.Listen("tcp", addr)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
