package ldapadapter

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"
)

// dial opens the socket, with TCP keepalive and TCP_USER_TIMEOUT set, and
// does TLS or StartTLS. StartTLS is done here, before the tap, so the tap
// always sees cleartext LDAP.
func dial(ctx context.Context, c *Config, provider string) (net.Conn, error) {
	u, _ := url.Parse(provider) // validated by withDefaults
	host := u.Host
	if u.Port() == "" {
		port := "389"
		if u.Scheme == "ldaps" {
			port = "636"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	d := net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: c.TCPKeepAlive > 0, Idle: c.TCPKeepAlive, Interval: c.TCPKeepAlive / 3, Count: 3},
		Control: func(_, _ string, rc syscall.RawConn) error {
			if c.TCPUserTimeout <= 0 {
				return nil
			}
			var serr error
			err := rc.Control(func(fd uintptr) { serr = setUserTimeout(fd, c.TCPUserTimeout) })
			if err != nil {
				return err
			}
			return serr
		},
	}
	if c.TCPKeepAlive < 0 {
		d.KeepAlive = -1
	}
	dialFn := d.DialContext
	if c.DialContext != nil {
		dialFn = c.DialContext
	}
	raw, err := dialFn(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	// Everything until the bind is answered is bounded by ctx.
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var conn net.Conn = raw
	switch {
	case u.Scheme == "ldaps":
		tc := tls.Client(raw, tlsConfig(c, u))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		conn = tc
	case c.StartTLS:
		if err := startTLS(raw, c.MaxMessage); err != nil {
			raw.Close()
			return nil, err
		}
		tc := tls.Client(raw, tlsConfig(c, u))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("StartTLS handshake: %w", err)
		}
		conn = tc
	}
	raw.SetDeadline(time.Time{})
	return conn, nil
}

func tlsConfig(c *Config, u *url.URL) *tls.Config {
	cfg := &tls.Config{}
	if c.TLS != nil {
		cfg = c.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	return cfg
}

// startTLS runs the StartTLS extended operation on the raw socket.
func startTLS(conn net.Conn, max int) error {
	if _, err := conn.Write(startTLSRequest(1)); err != nil {
		return fmt.Errorf("StartTLS: %w", err)
	}
	frame, err := readFrame(conn, max)
	if err != nil {
		return fmt.Errorf("StartTLS: %w", err)
	}
	code, msg, err := resultCode(frame)
	if err != nil {
		return fmt.Errorf("StartTLS: %w", err)
	}
	if code != 0 {
		return &ResultError{Op: "StartTLS", Code: code, Message: msg}
	}
	return nil
}
