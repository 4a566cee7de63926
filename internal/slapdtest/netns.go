package slapdtest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
)

// Netns is a provider host the test owns: a network namespace joined to the
// test's namespace by a veth pair with addresses of its own. Vanish removes
// the link and the host without a FIN reaching the consumer; Return builds a
// fresh host at the same address.
type Netns struct {
	t              TB
	name, vethHost string
	hostIP, nsIP   string
	subnet         string
}

var netnsSeq atomic.Int32

// RequireNetns skips the test unless it runs as root with ip(8).
func RequireNetns(t TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("half-open test needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("half-open test needs ip(8): apt-get install iproute2")
	}
}

// NewNetns creates the namespace and its link; the test's cleanup deletes them.
func NewNetns(t TB) *Netns {
	t.Helper()
	RequireNetns(t)
	// Test processes run side by side (go test runs packages in
	// parallel): take a /30 that no interface on the machine has yet.
	used, _ := exec.Command("ip", "-o", "addr").Output()
	n := 0
	for try := range 250 {
		n = (os.Getpid() + int(netnsSeq.Add(1)) + try) % 250
		if !strings.Contains(string(used), fmt.Sprintf(" 10.213.%d.", n)) {
			break
		}
	}
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, n)
	ns := &Netns{
		t: t, name: "rl" + id, vethHost: "rlh" + id,
		hostIP: fmt.Sprintf("10.213.%d.1", n), nsIP: fmt.Sprintf("10.213.%d.2", n),
		subnet: fmt.Sprintf("10.213.%d.0/30", n),
	}
	// Traffic for the test host must never leave this machine: while the
	// veth exists its connected route wins; once the host has vanished this
	// blackhole route drops the packets here instead of letting them follow
	// the default route out.
	if err := ns.run("route", "replace", "blackhole", ns.subnet, "metric", "4000"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.run("route", "del", "blackhole", ns.subnet, "metric", "4000") })
	ns.up()
	t.Cleanup(ns.down)
	return ns
}

func (n *Netns) run(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (n *Netns) up() {
	peer := "rlp" + strings.TrimPrefix(n.name, "rl")
	for _, args := range [][]string{
		{"netns", "add", n.name},
		{"link", "add", n.vethHost, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", n.name},
		{"addr", "add", n.hostIP + "/30", "dev", n.vethHost},
		{"link", "set", n.vethHost, "up"},
		{"netns", "exec", n.name, "ip", "addr", "add", n.nsIP + "/30", "dev", peer},
		{"netns", "exec", n.name, "ip", "link", "set", peer, "up"},
		{"netns", "exec", n.name, "ip", "link", "set", "lo", "up"},
	} {
		if err := n.run(args...); err != nil {
			n.down()
			n.t.Fatal(err)
		}
	}
}

func (n *Netns) down() {
	n.run("link", "del", n.vethHost) // deletes the peer too
	n.run("netns", "del", n.name)
}

// Place is a Start option that runs slapd inside the namespace.
func (n *Netns) Place(s *Server) {
	s.Host = n.nsIP
	s.Port = 389
	s.Exec = n.Exec()
}

// IP is the provider host's address, inside the namespace.
func (n *Netns) IP() string { return n.nsIP }

// Exec is the command prefix that runs a program inside the namespace.
func (n *Netns) Exec() []string { return []string{"ip", "netns", "exec", n.name} }

// Process is a provider process Vanish and Return can end and start: a
// slapd, or a 389-ds from package dstest.
type Process interface {
	Kill()
	Launch()
}

// Vanish cuts the link first, then kills the provider: its FIN goes nowhere,
// and the consumer's socket is left half-open.
func (n *Netns) Vanish(s Process) {
	n.run("link", "del", n.vethHost)
	s.Kill()
	n.run("netns", "del", n.name)
}

// Return builds a fresh host at the same address and starts the provider
// there on its old data.
func (n *Netns) Return(s Process) {
	n.up()
	s.Launch()
}
