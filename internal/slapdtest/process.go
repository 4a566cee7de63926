package slapdtest

import (
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Proc is a provider process the harness started (slapd, or 389-ds's
// ns-slapd): signals reach it by its own id, never by name, and ending it
// waits until it is gone.
type Proc struct {
	mu  sync.Mutex
	cmd *exec.Cmd
}

// Started records the process just started.
func (p *Proc) Started(cmd *exec.Cmd) {
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
}

// Pid is the running process's id, or 0.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
	}
}

// Pause stops the process (SIGSTOP): sockets stay open, nothing answers.
func (p *Proc) Pause() { p.signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Proc) Resume() { p.signal(syscall.SIGCONT) }

// End sends sig and waits for the process, killing it after wait.
func (p *Proc) End(sig syscall.Signal, wait time.Duration) {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot act on SIGTERM
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		cmd.Process.Kill()
		<-done
	}
}

// Bind dials url and binds as dn; the caller closes the connection. opts
// come after a 5 s dial timeout (a TLS configuration, say).
func Bind(url, dn, pw string, opts ...ldap.DialOpt) (*ldap.Conn, error) {
	opts = append([]ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second})}, opts...)
	c, err := ldap.DialURL(url, opts...)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(dn, pw); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// StartLogged starts args (a prefix such as ip netns exec first) with its
// output appended to logPath, and records the process.
func (p *Proc) StartLogged(args []string, logPath string) error {
	cmd := exec.Command(args[0], args[1:]...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	p.Started(cmd)
	return nil
}

// LogTail is the end of a server's log, for failure messages.
func LogTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// ShortTempDir makes a directory under os.TempDir that the test's cleanup
// removes. Not t.TempDir, whose path holds the test's name: a unix socket
// under it must stay under 108 bytes.
func ShortTempDir(t TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Missing skips the test for want of a provider, saying msg; under CI=true
// it fails instead, so a CI image without the provider cannot pass by
// skipping.
func Missing(t TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
