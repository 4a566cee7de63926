package slapdtest

import (
	"net"
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

// Bind dials url and binds as dn; the caller closes the connection.
func Bind(url, dn, pw string) (*ldap.Conn, error) {
	c, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
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
