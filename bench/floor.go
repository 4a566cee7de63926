package main

import (
	"fmt"
	"net"
	"os"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"golang.org/x/sys/unix"

	"github.com/replink/replink/internal/slapdtest"
)

// floorResult is the process CPU per idle keepalive probe answered, of a
// prober that does nothing else (probeFloor).
type floorResult struct {
	raw, inRuntime time.Duration
}

// floorGrid is the shortest step of the floor's probe schedule, the same
// as the links' keepalive grid (fsm's keepaliveGrid).
const floorGrid = 10 * time.Millisecond

// probeFloor is the least process CPU an idle keepalive probe can cost
// against this slapd on this machine when it takes one write(2) and one
// read(2), as it does for every consumer built on sockets: the same
// number of bound connections, each sent a WhoAmI once per interval by one
// goroutine on a 10 ms grid (coarser when there are fewer connections
// than steps), each answer read one step later. Nothing else runs: no
// link, no machine, no timer, no allocation per probe. A probe then costs
// its write(2), its read(2), the kernel's work behind them and a share of
// the grid's wake-ups.
//
// raw uses sockets made with socket(2), which the Go runtime never polls;
// inRuntime uses sockets from package net, as every LDAP client in Go
// does, go-ldap included, so each answer also wakes the runtime's poller
// (edge-triggered: every arrival is an event) though nobody waits on it.
func probeFloor(h *slapdtest.Harness, srv *slapdtest.Server, n int, interval, window time.Duration) floorResult {
	return floorResult{
		raw:       floorRun(h, srv, n, interval, window, false),
		inRuntime: floorRun(h, srv, n, interval, window, true),
	}
}

// floorRun opens n connections, binds them, probes them for a warm-up
// interval and then for window, and returns the process CPU per probe
// answered in the window.
func floorRun(h *slapdtest.Harness, srv *slapdtest.Server, n int, interval, window time.Duration, inRuntime bool) time.Duration {
	fds := make([]int, n)
	bind, probe := floorBind(), floorProbe()
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := range fds {
		fd, done, err := floorDial(srv, inRuntime)
		if done != nil {
			closers = append(closers, done)
		}
		if err == nil {
			err = floorBound(fd, bind)
		}
		if err != nil {
			h.Fatal(fmt.Errorf("probe floor: connection %d: %w", i, err))
		}
		fds[i] = fd
	}
	// A step with no probe would be a wake-up for nothing: with fewer
	// connections than grid steps in an interval, the step is longer.
	step := max(floorGrid, interval/time.Duration(n))
	steps := max(1, int(interval/step))
	per := (n + steps - 1) / steps
	batch := func(k int) []int {
		lo := min((k%steps)*per, n)
		return fds[lo:min(lo+per, n)]
	}
	buf := make([]byte, 512)
	// run probes for d; it returns the bytes read and the smallest read
	// that found any, which is one answer.
	run := func(d time.Duration) (bytes, answer int) {
		t := time.NewTicker(step)
		defer t.Stop()
		for k, end := 0, time.Now().Add(d); time.Now().Before(end); k++ {
			<-t.C
			for _, fd := range batch(k) {
				unix.Write(fd, probe)
			}
			if k == 0 {
				continue
			}
			for _, fd := range batch(k - 1) {
				if m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err == nil && m > 0 {
					bytes += m
					if answer == 0 || m < answer {
						answer = m
					}
				}
			}
		}
		return bytes, answer
	}
	_, answer := run(interval)
	cpu0 := cpuTime()
	bytes, _ := run(window)
	cpu := cpuTime() - cpu0
	if answer == 0 || bytes == 0 {
		h.Fatal(fmt.Errorf("probe floor: no answer from slapd"))
	}
	return time.Duration(float64(cpu) * float64(answer) / float64(bytes))
}

// floorDial connects to srv: with socket(2) and connect(2), or through
// package net. done closes the connection. The descriptor is blocking
// until floorBound.
func floorDial(srv *slapdtest.Server, inRuntime bool) (fd int, done func(), err error) {
	if inRuntime {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			return 0, nil, err
		}
		// The descriptor is used outside Control, as a plain number: c
		// stays open and unused until done.
		rc, err := c.(*net.TCPConn).SyscallConn()
		if err == nil {
			err = rc.Control(func(f uintptr) { fd = int(f) })
		}
		if err == nil {
			err = unix.SetNonblock(fd, false)
		}
		return fd, func() { c.Close() }, err
	}
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, os.NewSyscallError("socket", err)
	}
	done = func() { unix.Close(fd) }
	addr := &unix.SockaddrInet4{Port: srv.Port}
	copy(addr.Addr[:], net.ParseIP(srv.Host).To4())
	if err := unix.Connect(fd, addr); err != nil {
		return fd, done, os.NewSyscallError("connect", err)
	}
	return fd, done, unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as package net does
}

// floorBound binds fd as the replicator, waits for the answer and leaves
// fd non-blocking.
func floorBound(fd int, bind []byte) error {
	if _, err := unix.Write(fd, bind); err != nil {
		return os.NewSyscallError("write", err)
	}
	buf := make([]byte, 512)
	m, err := unix.Read(fd, buf)
	if err != nil {
		return os.NewSyscallError("read", err)
	}
	p, err := ber.DecodePacketErr(buf[:m])
	if err != nil || len(p.Children) < 2 || len(p.Children[1].Children) < 1 {
		return fmt.Errorf("bind: malformed answer")
	}
	if code, _ := p.Children[1].Children[0].Value.(int64); code != 0 {
		return fmt.Errorf("bind: result code %d", code)
	}
	return unix.SetNonblock(fd, true)
}

// floorBind is a simple bind as the replicator, message ID 1.
func floorBind() []byte {
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 0, nil, "BindRequest")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "version"))
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, slapdtest.ReplicatorDN, "name"))
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, slapdtest.ReplicatorPW, "simple"))
	return floorMessage(1, req)
}

// floorProbe is a WhoAmI request (RFC 4532), message ID 2. Every probe of
// a connection reuses it: each is answered before the next is sent.
func floorProbe() []byte {
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 23, nil, "ExtendedRequest")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.4203.1.11.3", "requestName"))
	return floorMessage(2, req)
}

// floorMessage is the LDAPMessage that carries op with message ID id.
func floorMessage(id int64, op *ber.Packet) []byte {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	msg.AppendChild(op)
	return msg.Bytes()
}
