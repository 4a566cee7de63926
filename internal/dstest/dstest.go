// Package dstest starts throwaway 389 Directory Server providers for tests:
// the second implementation of RFC 4533 the conformance scenarios run
// against, through its Content Synchronization plugin.
//
// Each server is an instance of its own, created by dscreate under a
// private prefix in a temporary directory (never the system's /etc/dirsrv
// or a systemd unit), listening on a free loopback port, and ended by the
// test that started it, by process id. It holds the same names as a
// slapdtest.Server (suffix, ou=people, the replicator), so that the fault
// proxy, the netns host and the write helpers of slapdtest serve both.
package dstest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink/internal/slapdtest"
)

// The Directory Manager of every test instance. dscreate wants a password
// of eight characters or more.
const (
	ManagerDN = "cn=Directory Manager"
	ManagerPW = "Directory_Manager_Password"
)

const instance = "replink"

// Binaries are the 389-ds programs the harness runs, found on PATH or in
// /usr/sbin; an empty string is a missing one.
func Binaries() (nsSlapd, dscreate string) {
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := filepath.Join("/usr/sbin", name); fileExists(p) {
			return p
		}
		return ""
	}
	return find("ns-slapd"), find("dscreate")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Require skips the test when 389-ds is missing, saying how to install it;
// under CI=true it fails instead, so a CI image without it cannot pass by
// skipping every 389-ds test.
func Require(t slapdtest.TB) {
	t.Helper()
	ns, dc := Binaries()
	if ns != "" && dc != "" {
		return
	}
	msg := "389-ds not installed: apt-get install 389-ds-base (the tests create their own instances; no system instance is used)"
	slapdtest.Missing(t, msg)
}

// Server is one ns-slapd process and its instance tree; like a
// slapdtest.Server it can be paused, stopped, killed and started again on
// the same data and address.
type Server struct {
	t slapdtest.TB
	// Dir is the instance's prefix: etc, var, run and tmp live under it.
	Dir  string
	Host string
	Port int
	// Exec prefixes the ns-slapd command line (ip netns exec NAME).
	Exec []string

	slapdtest.Proc
}

// Start creates an instance with dscreate, enables Retro Changelog and
// Content Synchronization, starts it and adds ou=people and the replicator.
func Start(t slapdtest.TB, opts ...func(*Server)) *Server {
	t.Helper()
	Require(t)
	// The LDAPI socket lives under the prefix.
	dir := slapdtest.ShortTempDir(t, "dstest-")
	s := &Server{t: t, Dir: dir, Host: "127.0.0.1"}
	for _, o := range opts {
		o(s)
	}
	if s.Port == 0 {
		s.Port = slapdtest.FreePort(t)
	}
	if err := s.create(); err != nil {
		t.Fatal(err)
	}
	s.Launch()
	t.Cleanup(s.Kill)
	if err := s.seed(); err != nil {
		t.Fatal(err)
	}
	return s
}

// InNetns is a Start option that runs the server inside the namespace, on
// its address and port 389.
func InNetns(n *slapdtest.Netns) func(*Server) {
	return func(s *Server) { s.Host, s.Port, s.Exec = n.IP(), 389, n.Exec() }
}

func (s *Server) configDir() string { return filepath.Join(s.Dir, "etc", "dirsrv", "slapd-"+instance) }

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// URL is ldap://host:port.
func (s *Server) URL() string { return "ldap://" + s.Addr() }

// Launch starts ns-slapd on the existing instance in the foreground (-d 0)
// and waits until the Directory Manager can bind.
func (s *Server) Launch() {
	s.t.Helper()
	nsSlapd, _ := Binaries()
	args := append(append([]string{}, s.Exec...), nsSlapd, "-D", s.configDir(), "-i", filepath.Join(s.Dir, "run", "ns-slapd.pid"), "-d", "0")
	if err := s.StartLogged(args, filepath.Join(s.Dir, "ns-slapd.log")); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := s.Admin()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("389-ds on %s not ready after 60s: %v\n%s", s.Addr(), err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTail is the end of the server's error log, for failure messages.
func (s *Server) logTail() string {
	return slapdtest.LogTail(filepath.Join(s.Dir, "var", "log", "dirsrv", "slapd-"+instance, "errors"))
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it, killing it
// after 30s: 389-ds flushes its caches and database environment first.
func (s *Server) Stop() { s.End(syscall.SIGTERM, 30*time.Second) }

// Kill ends the server at once (SIGKILL) and waits for it.
func (s *Server) Kill() { s.End(syscall.SIGKILL, 10*time.Second) }

// Admin returns a connection bound as the Directory Manager; the caller
// closes it.
func (s *Server) Admin() (*ldap.Conn, error) { return slapdtest.Bind(s.URL(), ManagerDN, ManagerPW) }

// Snapshot is what the replicator may read under base: DN → attribute →
// sorted values.
func (s *Server) Snapshot(ctx context.Context, base string) (map[string]map[string][]string, error) {
	return slapdtest.SnapshotOf(ctx, s.URL(), base)
}

// Write makes n changes (see slapdtest.WriteTo).
func (s *Server) Write(n int) error { return slapdtest.WriteTo(s, n) }

// Delete removes the first n people, in DN order.
func (s *Server) Delete(n int) error { return slapdtest.DeleteFrom(s, n) }

// SetReplicatorPassword changes the replicator's password.
func (s *Server) SetReplicatorPassword(pw string) error {
	return slapdtest.SetReplicatorPasswordOn(s, pw)
}

// ReplaceBase renames ou=people away with its subtree and adds a new one.
func (s *Server) ReplaceBase() error { return slapdtest.ReplaceBaseOn(s) }
