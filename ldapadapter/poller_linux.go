package ldapadapter

import (
	"context"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A poller watches the sockets of persisting links while they wait, in one
// epoll set of its own, and answers the common case itself: a read that
// holds nothing but answers to keepalive probes. Such a read is stamped on
// the link and dropped there, so an idle link's probe cycle wakes no
// goroutine of the link's: one poller goroutine serves the answers of
// thousands of links in batches, with one read(2) each and no read to find
// the socket empty. Anything else (a change, a Notice of Disconnection, a
// partial message, end of file, an error) is handed with the bytes read to
// the link's reader, which takes over as if it had read them itself, and
// waits on its own until a probe's answer comes alone (see tap.idleReady).
//
// The epoll set is level-triggered, so a socket registered with bytes
// already waiting is reported at once; its own descriptor waits in the
// runtime's poller, so the goroutine holds no thread while nothing
// happens. The goroutine runs only while some link waits or a drain is
// due.
type poller struct {
	mu      sync.Mutex
	ep      *os.File // the epoll set; nil until first used
	epfd    int      // its descriptor, -1 once closed
	rc      syscall.RawConn
	waiting map[uint64]*tap // by key, which is never reused
	next    uint64          // last key given
	running bool            // the goroutine is serving
	done    chan struct{}   // closed when the goroutine ends
	// off says no link may wait here: the set could not be made, or close
	// was called (the goroutine, if running, closes the set as it ends).
	off    atomic.Bool
	drains []drain                 // taps whose answer waits unannounced, in order of due time
	wakeAt time.Time               // the goroutine's deadline; zero: none
	events [128]syscall.EpollEvent // the goroutine's alone
	buf    [4096]byte              // the goroutine's alone
}

// newPoller returns a poller that makes its epoll set on first use.
func newPoller() *poller { return &poller{} }

// drainDelay is how long after a probe its answer is read by the poller
// while the socket's receive low-water mark keeps the answer from waking
// anyone: long enough for a provider on the same host or network to have
// answered, short enough that a message smaller than the answer, which the
// raised mark also keeps quiet, waits no longer than that. An answer later
// than that wakes the poller as any byte does.
const drainDelay = 5 * time.Millisecond

// drain is a tap whose low-water mark was raised for a probe.
type drain struct {
	t  *tap
	at time.Time
}

// pollWait is a tap's side of the poller, guarded by the poller's mu.
type pollWait struct {
	key     uint64        // registered under this key; 0: not registered
	parked  atomic.Bool   // key != 0, for the probe to read without the lock
	gone    bool          // the tap is shutting down: never register again
	pending []byte        // bytes the poller read and handed over
	err     error         // why the poller handed over without bytes to follow
	ready   chan struct{} // signalled when the poller hands over or the tap goes
}

// wait registers t's socket and blocks until the poller hands it back:
// with the bytes it read, if any, and the error to report after them. ok
// is false if t cannot wait here (the set could not be made or is closed, the socket refused):
// t then waits on its own.
func (p *poller) wait(t *tap) (pending []byte, ok bool, err error) {
	p.mu.Lock()
	w := &t.pw
	if w.gone {
		p.mu.Unlock()
		return nil, true, net.ErrClosed
	}
	if !p.openLocked() {
		p.mu.Unlock()
		return nil, false, nil
	}
	p.next++
	key := p.next
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(key), Pad: int32(key >> 32)}
	var cerr error
	if err := t.raw.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil {
		p.mu.Unlock()
		return nil, true, err // closed under us
	}
	if cerr != nil {
		p.mu.Unlock()
		return nil, false, nil
	}
	w.key = key
	w.parked.Store(true)
	if w.ready == nil {
		w.ready = make(chan struct{}, 1)
	}
	p.waiting[key] = t
	p.startLocked()
	p.mu.Unlock()

	<-w.ready
	p.mu.Lock()
	pending, err = w.pending, w.err
	w.pending, w.err = nil, nil
	p.mu.Unlock()
	return pending, true, err
}

// cancel ends t's wait, if it waits, and any wait to come: its reader
// returns net.ErrClosed. It is part of the tap's shutdown.
func (p *poller) cancel(t *tap) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := &t.pw
	w.gone = true
	if w.key == 0 {
		return
	}
	p.releaseLocked(t)
	w.err = net.ErrClosed
	signal(w.ready)
}

// releaseLocked takes t's socket out of the set.
func (p *poller) releaseLocked(t *tap) {
	delete(p.waiting, t.pw.key)
	t.pw.key = 0
	t.pw.parked.Store(false)
	// A socket already closed has left the set with its descriptor.
	t.raw.Control(func(fd uintptr) {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	if len(p.waiting) == 0 && len(p.drains) == 0 {
		p.wakeLocked(time.Unix(1, 0)) // the goroutine wakes and ends
	}
}

// wakeLocked makes the goroutine wake by at, if it would wake later.
func (p *poller) wakeLocked(at time.Time) {
	if p.wakeAt.IsZero() || at.Before(p.wakeAt) {
		p.wakeAt = at
		p.ep.SetReadDeadline(at)
	}
}

// startLocked starts the goroutine if it is not running.
func (p *poller) startLocked() {
	if !p.running {
		p.running = true
		p.done = make(chan struct{})
		p.wakeAt = time.Time{}
		p.ep.SetReadDeadline(time.Time{})
		go p.serve(p.done)
	}
}

// drainLater has t's probe answer read drainDelay from now: t's
// low-water mark was raised above the answer's length so that, alone, it
// wakes no one.
func (p *poller) drainLater(t *tap) bool {
	at := time.Now().Add(drainDelay)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.openLocked() {
		return false
	}
	p.drains = append(p.drains, drain{t, at})
	p.startLocked()
	p.wakeLocked(at)
	return true
}

// drainOne reads what t's socket holds, if its reader waits here, and
// lowers the mark again: from then on, any byte wakes the poller.
func (p *poller) drainOne(t *tap) {
	p.mu.Lock()
	key := t.pw.key
	p.mu.Unlock()
	if key != 0 {
		p.readOne(key, t)
	}
	t.raw.Control(func(fd uintptr) { setLowat(fd, 1) })
	t.raised.Store(false)
}

// close releases the epoll set once no link waits in it, and returns
// when the goroutine has ended; links that wait after it wait on their
// own.
func (p *poller) close() {
	p.mu.Lock()
	p.off.Store(true)
	done := p.done
	if !p.running {
		p.closeLocked()
		done = nil
	}
	p.mu.Unlock()
	if done != nil {
		<-done // it closes the set as it ends, within a drain's delay once no link waits
	}
}

// usable reports whether a link may wait here.
func (p *poller) usable() bool { return !p.off.Load() }

func (p *poller) closeLocked() {
	if p.ep != nil {
		p.ep.Close()
		p.ep, p.epfd = nil, -1
	}
}

// openLocked makes the epoll set on first use; false if no link may wait
// here.
func (p *poller) openLocked() bool {
	if p.ep != nil || p.off.Load() {
		return !p.off.Load()
	}
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err == nil {
		err = syscall.SetNonblock(fd, true) // so the runtime's poller waits on it
	}
	var ep *os.File
	var rc syscall.RawConn
	if err == nil {
		ep = os.NewFile(uintptr(fd), "replink-poller")
		rc, err = ep.SyscallConn()
	}
	if err != nil {
		if ep != nil {
			ep.Close()
		} else if fd >= 0 {
			syscall.Close(fd)
		}
		p.off.Store(true)
		return false
	}
	p.ep, p.rc, p.epfd, p.waiting = ep, rc, fd, map[uint64]*tap{}
	return true
}

// serve is the poller's goroutine: it waits for the set to be readable or
// a drain to fall due, serves what is ready, and ends once no link waits
// and nothing is left to drain.
func (p *poller) serve(done chan struct{}) {
	defer close(done)
	pprof.SetGoroutineLabels(context.Background()) // no link's: it serves them all
	var due []drain
	for {
		var n int
		var werr error
		err := p.rc.Read(func(fd uintptr) bool {
			n, werr = syscall.EpollWait(int(fd), p.events[:], 0)
			return werr != syscall.EINTR && (werr != nil || n > 0)
		})
		if err != nil || werr != nil {
			n = 0 // a deadline: a drain due, or an empty set
		}
		for _, ev := range p.events[:n] {
			p.serveOne(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32)
		}
		now := time.Now()
		p.mu.Lock()
		i := 0
		for i < len(p.drains) && !p.drains[i].at.After(now) {
			i++
		}
		due = append(due[:0], p.drains[:i]...)
		p.drains = append(p.drains[:0], p.drains[i:]...)
		p.mu.Unlock()
		for j := range due {
			p.drainOne(due[j].t)
			due[j] = drain{}
		}
		p.mu.Lock()
		if len(p.waiting) == 0 && len(p.drains) == 0 {
			p.running = false
			if p.off.Load() {
				p.closeLocked()
			}
			p.mu.Unlock()
			return
		}
		next := time.Time{}
		if len(p.drains) > 0 {
			next = p.drains[0].at
		}
		if !next.Equal(p.wakeAt) {
			p.wakeAt = next
			p.ep.SetReadDeadline(next)
		}
		p.mu.Unlock()
	}
}

// serveOne reads once from the socket registered under key, if it is
// still registered.
func (p *poller) serveOne(key uint64) {
	p.mu.Lock()
	t := p.waiting[key]
	p.mu.Unlock()
	if t != nil {
		p.readOne(key, t)
	}
}

// readOne reads once from t's socket, registered under key: keepalive
// answers alone are the link's life, stamped; anything else goes to the
// link's reader with the socket.
func (p *poller) readOne(key uint64, t *tap) {
	var n int
	var rerr error
	if err := t.raw.Control(func(fd uintptr) {
		for {
			n, rerr = syscall.Read(int(fd), p.buf[:])
			if rerr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		p.handOver(key, t, nil, err)
		return
	}
	switch {
	case rerr == syscall.EAGAIN:
		return
	case rerr != nil:
		p.handOver(key, t, nil, os.NewSyscallError("read", rerr))
		return
	case n == 0:
		p.handOver(key, t, nil, io.EOF)
		return
	}
	if ok, answer := probeAnswers(p.buf[:n], t.in.max, t.probeID.Load()); ok && n < len(p.buf) {
		t.lastRead.Store(time.Now().UnixNano())
		t.received.Add(int64(n))
		if answer > 0 {
			t.answerLen.Store(int32(answer))
		}
		return
	}
	p.handOver(key, t, append([]byte(nil), p.buf[:n]...), nil)
}

// handOver gives t's socket back to its reader with what was read.
func (p *poller) handOver(key uint64, t *tap, pending []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.pw.key != key {
		return // cancelled meanwhile: the reader is told so already
	}
	p.releaseLocked(t)
	t.pw.pending, t.pw.err = pending, err
	signal(t.pw.ready)
}

// maxAnswer is the longest answer whose length a probe's low-water mark
// is set from: a WhoAmI answer is an authorization identity, and a
// provider that claims a longer one would hold every smaller message
// back for a drain's delay.
const maxAnswer = 256

// probeAnswers reports whether b is nothing but whole messages, each an
// answer to a keepalive probe within max bytes, which the reader would
// read and drop; answer is the length of the last that answers a probe
// sent (ID up to sent), as an extended response of at most maxAnswer
// bytes, or 0.
func probeAnswers(b []byte, max int, sent int64) (ok bool, answer int) {
	for len(b) > 0 {
		n, whole := frameLength(b)
		if !whole || n > len(b) || n > max {
			return false, 0
		}
		env, err := parseEnvelope(b[:n])
		if err != nil || !env.probeAnswer() {
			return false, 0
		}
		if env.id > probeIDBase && env.id <= sent && env.op == opExtendedResponse && n <= maxAnswer {
			answer = n
		}
		b = b[n:]
	}
	return true, answer
}

// frameLength is the length of the message b starts with, header included,
// read from its header alone; false if the header is not all there or is
// not one readFrame accepts.
func frameLength(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return 0, false
	}
	l := b[1]
	switch {
	case l < 0x80:
		return 2 + int(l), true
	case l == 0x80 || l > 0x84:
		return 0, false
	}
	k := int(l & 0x7f)
	if len(b) < 2+k {
		return 0, false
	}
	n := 0
	for _, c := range b[2 : 2+k] {
		n = n<<8 | int(c)
	}
	return 2 + k + n, true
}

// setLowat sets the socket's receive low-water mark: below n bytes, data
// makes it neither readable nor wakes a waiter (FIN, reset and errors do).
func setLowat(fd uintptr, n int) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
}

// unread reports whether the socket holds bytes not read yet: with the
// low-water mark raised, an answer may wait there unannounced.
func (t *tap) unread() bool {
	n := 0
	t.raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
	return n > 0
}
