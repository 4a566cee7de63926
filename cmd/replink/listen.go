package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Refusals to serve the copy and the admin actions beyond this machine:
// that takes both an explicit http-allow-external and a token.
var (
	ErrExternalHTTP    = errors.New("refusing to serve HTTP on a non-loopback address; set http-allow-external and http-token-file to insist")
	ErrExternalNoToken = errors.New("refusing to serve HTTP on a non-loopback address without http-token-file: anyone who reaches it could read the copy and stop the links")
)

// listenHTTP binds addr: loopback, or beyond with both allowExternal and
// a token.
func listenHTTP(addr string, allowExternal, token bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", addr, err)
	}
	switch {
	case loopback(host):
	case !allowExternal:
		return nil, fmt.Errorf("--http %q: %w", addr, ErrExternalHTTP)
	case !token:
		return nil, fmt.Errorf("--http %q: %w", addr, ErrExternalNoToken)
	}
	return net.Listen("tcp", addr)
}

// readToken reads the admin token from a file: its first line, which
// must not be empty.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("http-token-file: %w", err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		return "", fmt.Errorf("http-token-file: %s is empty", path)
	}
	return tok, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
