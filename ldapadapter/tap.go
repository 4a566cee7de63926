package ldapadapter

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// Message IDs are split in three ranges, so the tap routes every answer by
// its ID alone: go-ldap's requests count up from 1; the sync searches,
// whose responses the adapter decodes itself, from syncIDBase; keepalive
// probes, whose answers are swallowed, from probeIDBase.
const (
	syncIDBase  = 1 << 29
	probeIDBase = 1 << 30
)

// ErrNotice is the cause of disconnect-notice.
var ErrNotice = errors.New("notice of disconnection from provider")

// ErrClosedByProvider is the cause of connection-closed on a clean EOF.
var ErrClosedByProvider = errors.New("connection closed by provider")

// tap sits between the socket (or TLS) and go-ldap. Its own goroutine reads
// whole LDAP messages as soon as they arrive (through a frameReader: a
// pooled buffer held only while bytes flow), so liveness is measured at the
// socket whatever the handler is doing: it stamps every read, recognises a
// Notice of Disconnection (which go-ldap drops), swallows the answers to its
// own keepalive probes, rejects malformed or unsolicited messages, and
// reports EOF or reset at once. Everything else is queued for go-ldap,
// bounded in bytes: when the queue is full the reader waits, and LastRead
// says "now", because the consumer, not the provider, is behind.
type tap struct {
	conn net.Conn
	sink fsm.Sink
	in   frameReader // readLoop's alone; its max is the message size limit

	lastRead atomic.Int64  // unix nanos
	received *atomic.Int64 // bytes read, counted for the link
	maxSent  atomic.Int64  // highest message ID go-ldap sent
	probeID  atomic.Int64
	syncID   atomic.Int64    // last sync search ID
	wmu      sync.Mutex      // one whole message per write
	raw      syscall.RawConn // the socket, for probes written in place; nil under TLS
	probeBuf [whoAmILen]byte // the probe being written in place; under wmu
	poller   *poller         // the Consumer's, or nil: the tap waits on its own
	pollable atomic.Bool     // wait in the poller between bursts
	pw       pollWait        // the poller's
	chatty   bool            // the burst being read held more than probe answers; readLoop's alone
	// answerLen is the length of the provider's answer to a WhoAmI probe,
	// once the poller has seen one; raised says the socket's receive
	// low-water mark is above it until the poller drains the answer.
	answerLen atomic.Int32
	raised    atomic.Bool

	mu      sync.Mutex
	queue   frames  // for go-ldap
	limit   int     // bytes each queue may hold
	cur     []byte  // frame go-ldap is reading
	stream  *stream // the sync search in flight, if any
	err     error   // why reading ended; returned to go-ldap once queue drains
	closing bool    // we closed it: report nothing
	retired bool    // go-ldap is gone: a message for it is unsolicited
	armed   bool    // Connected was reported: failures are the tap's to report
	failed  *event  // why reading ended
	space   chan struct{}
	data    chan struct{}
	done    chan struct{}
}

func newTap(c net.Conn, sink fsm.Sink, maxFrame, queueLimit int, received *atomic.Int64, p *poller) *tap {
	t := &tap{
		poller: p, conn: c, sink: sink, in: frameReader{conn: c, max: maxFrame}, limit: queueLimit, received: received,
		space: make(chan struct{}, 1), data: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if sc, ok := c.(syscall.Conn); ok {
		t.raw, _ = sc.SyscallConn()
	}
	t.in.raw = t.raw
	if t.raw == nil {
		t.poller = nil
	}
	if t.poller != nil {
		t.in.idle = t
	}
	t.lastRead.Store(time.Now().UnixNano())
	t.probeID.Store(probeIDBase)
	t.syncID.Store(syncIDBase)
	go t.readLoop()
	return t
}

// idleReady reports whether the reader's next wait goes to the poller:
// once the link persists, while the poller takes sockets, and only after
// a burst of nothing but keepalive answers. A link that has just received
// a change is likely to receive more soon, and waits on its own until its
// next probe's answer: there a message costs one wake-up, where the poller
// would add an epoll_ctl(2) pair and a hand-over per burst. See poller.
func (t *tap) idleReady() bool {
	chatty := t.chatty
	t.chatty = false
	return !chatty && t.pollable.Load() && t.poller.usable()
}

// waitIdle waits for the socket in the poller.
func (t *tap) waitIdle() ([]byte, bool, error) { return t.poller.wait(t) }

// LastRead is when the provider last sent a byte, or now while messages
// wait for the consumer.
func (t *tap) LastRead() time.Time {
	t.mu.Lock()
	behind := t.queue.len() > 0 || len(t.cur) > 0 || (t.stream != nil && t.stream.frames.len() > 0)
	t.mu.Unlock()
	if behind || (t.raised.Load() && t.unread()) {
		return time.Now()
	}
	return time.Unix(0, t.lastRead.Load())
}

func (t *tap) readLoop() {
	defer close(t.done)
	defer t.in.release()
	for {
		frame, err := t.in.next()
		if len(frame) > 0 || err == nil {
			t.lastRead.Store(time.Now().UnixNano())
			t.received.Add(int64(len(frame)))
		}
		if err != nil {
			t.fail(classifyReadError(err))
			return
		}
		env, err := parseEnvelope(frame)
		switch {
		case err != nil:
			t.fail(event{replink.Exception, err})
			return
		case env.notice:
			t.fail(event{replink.DisconnectNotice, ErrNotice})
			return
		case env.probeAnswer():
			continue // it has done its work by arriving
		}
		t.chatty = true
		switch {
		case env.id > syncIDBase && env.id <= t.syncID.Load():
			if !t.toStream(env.id, frame) {
				return
			}
			continue
		case env.id == 0 || env.id > t.maxSent.Load() || t.isRetired():
			t.fail(event{replink.Exception, protocolErrorf("unsolicited message ID %d (op %d)", env.id, env.op)})
			return
		}
		if !t.enqueue(frame) {
			return
		}
	}
}

type event struct {
	ev    replink.Event
	cause error
}

func classifyReadError(err error) event {
	switch {
	case errors.Is(err, ErrProtocol):
		return event{replink.Exception, err}
	case errors.Is(err, io.EOF):
		return event{replink.ConnectionClosed, ErrClosedByProvider}
	default: // reset, unexpected EOF, TLS alert, timeout
		return event{replink.ConnectionClosed, err}
	}
}

// fail ends reading: the event is reported unless we are the ones closing,
// then go-ldap sees EOF once it has read what was queued.
func (t *tap) fail(e event) {
	t.mu.Lock()
	closing, armed := t.closing, t.armed
	if t.err == nil {
		t.err = io.EOF
	}
	t.failed = &e
	t.mu.Unlock()
	if !closing && armed {
		t.sink.Post(e.ev, e.cause)
	}
	t.conn.Close()
	t.wakeReaders()
}

// wakeReaders lets go-ldap and the sync session see that reading ended.
func (t *tap) wakeReaders() {
	signal(t.data)
	t.mu.Lock()
	if s := t.stream; s != nil {
		signal(s.data)
	}
	t.mu.Unlock()
}

// enqueue queues a frame for go-ldap.
func (t *tap) enqueue(frame []byte) bool {
	return t.push(frame, func() (*frames, chan struct{}) { return &t.queue, t.data })
}

// push queues frame in the queue pick chooses (under the lock; nil drops
// the frame), waiting while that queue is full. It reports false when the
// tap is closing.
func (t *tap) push(frame []byte, pick func() (*frames, chan struct{})) bool {
	for {
		t.mu.Lock()
		if t.closing {
			t.mu.Unlock()
			return false
		}
		q, wake := pick()
		if q == nil {
			t.mu.Unlock()
			return true
		}
		if q.room(len(frame), t.limit) {
			q.push(frame)
			t.mu.Unlock()
			signal(wake)
			return true
		}
		t.mu.Unlock()
		<-t.space
	}
}

// frames is a queue of whole messages that counts its bytes.
type frames struct {
	list  [][]byte
	bytes int
}

func (q *frames) len() int { return len(q.list) }

// room reports whether n more bytes fit under limit; an empty queue takes
// any one message, so a message larger than the limit still passes.
func (q *frames) room(n, limit int) bool { return q.bytes == 0 || q.bytes+n <= limit }

func (q *frames) push(f []byte) {
	q.list = append(q.list, f)
	q.bytes += len(f)
}

func (q *frames) pop() []byte {
	f := q.list[0]
	q.list[0] = nil
	q.list = q.list[1:]
	q.bytes -= len(f)
	return f
}

// Read gives go-ldap the queued messages, byte for byte.
func (t *tap) Read(p []byte) (int, error) {
	for {
		t.mu.Lock()
		if t.retired {
			t.mu.Unlock()
			return 0, io.EOF
		}
		if len(t.cur) == 0 && t.queue.len() > 0 {
			t.cur = t.queue.pop()
			signal(t.space)
		}
		if len(t.cur) > 0 {
			n := copy(p, t.cur)
			t.cur = t.cur[n:]
			t.mu.Unlock()
			return n, nil
		}
		if t.err != nil {
			err := t.err
			t.mu.Unlock()
			return 0, err
		}
		t.mu.Unlock()
		<-t.data
	}
}

// Write sends one whole message from go-ldap and remembers its ID, so an
// answer to a request never made can be recognised.
func (t *tap) Write(p []byte) (int, error) {
	if env, err := parseRequestID(p); err == nil {
		for {
			cur := t.maxSent.Load()
			if env <= cur || t.maxSent.CompareAndSwap(cur, env) {
				break
			}
		}
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	return t.conn.Write(p)
}

// probe writes a keepalive request with a write deadline, so a provider that
// stopped reading cannot block the caller.
func (t *tap) probe(req func(int64) []byte, timeout time.Duration) error {
	msg := req(t.probeID.Add(1))
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := t.conn.Write(msg)
	t.conn.SetWriteDeadline(time.Time{})
	return err
}

// sendWhoAmI writes one WhoAmI keepalive probe without blocking the
// caller, which is the machine's goroutine. On a plain TCP socket with room
// in its send buffer, the probe, encoded into the tap's own buffer, goes
// out in one write(2) from the caller: no goroutine, no deadline to set, no
// allocation, which is most of what a probe cost at 5,000 a second. Under
// TLS, when the buffer is full, or while another message is being written,
// a goroutine counted in wg writes it (or what is left of it) with a write
// deadline of timeout. An error is not reported: a dead socket is the
// keepalive's to find.
func (t *tap) sendWhoAmI(wg *sync.WaitGroup, timeout time.Duration) {
	if t.raw == nil || !t.wmu.TryLock() {
		wg.Add(1)
		go func() { defer wg.Done(); t.probe(whoAmIRequest, timeout) }()
		return
	}
	msg, ok := appendWhoAmI(t.probeBuf[:0], t.probeID.Add(1))
	if !ok { // past the IDs the template encodes: never in practice
		t.wmu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); t.probe(whoAmIRequest, timeout) }()
		return
	}
	// Once the answer's length is known, while the reader waits in the
	// poller, the low-water mark goes above it: the answer then wakes no
	// one, and the poller reads it with the others that came in the same
	// few milliseconds (see drainDelay). Not while the reader reads on its
	// own: the rest of a message it waits for could be held back.
	lowat := 0
	if l := t.answerLen.Load(); l > 0 && t.pw.parked.Load() && !t.raised.Load() {
		lowat = int(l) + 1
	}
	var n int
	var werr error
	err := t.raw.Control(func(fd uintptr) {
		if lowat > 0 && setLowat(fd, lowat) == nil {
			t.raised.Store(true)
		} else {
			lowat = 0
		}
		n, werr = syscall.Write(int(fd), msg)
	})
	if lowat > 0 && !t.poller.drainLater(t) {
		t.raw.Control(func(fd uintptr) { setLowat(fd, 1) })
		t.raised.Store(false)
	}
	switch {
	case err == nil && werr == nil && n == len(msg):
		t.wmu.Unlock()
		return
	case err != nil || (werr != nil && werr != syscall.EAGAIN && werr != syscall.EINTR):
		t.wmu.Unlock()
		return
	}
	rest := append([]byte(nil), msg[max(n, 0):]...) // a partial message: the rest must follow it
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer t.wmu.Unlock() // a Mutex may be unlocked by another goroutine than its locker's
		t.conn.SetWriteDeadline(time.Now().Add(timeout))
		t.conn.Write(rest)
		t.conn.SetWriteDeadline(time.Time{})
	}()
}

// whoAmILen is the length of a WhoAmI request whose message ID takes four
// bytes, as every probe ID does (probeIDBase up to 2^31).
const whoAmILen = 35

// appendWhoAmI appends a WhoAmI extended request (RFC 4532) with message ID
// id, the bytes whoAmIRequest encodes, without building a BER tree. It
// reports false for an ID outside [2^24, 2^31), which needs other lengths.
func appendWhoAmI(dst []byte, id int64) ([]byte, bool) {
	const oid = "1.3.6.1.4.1.4203.1.11.3"
	if id < 1<<24 || id >= 1<<31 {
		return dst, false
	}
	dst = append(dst,
		0x30, whoAmILen-2, // LDAPMessage
		0x02, 4, byte(id>>24), byte(id>>16), byte(id>>8), byte(id), // messageID
		0x77, byte(2+len(oid)), // [APPLICATION 23] ExtendedRequest
		0x80, byte(len(oid))) // [0] requestName
	return append(dst, oid...), true
}

// arm hands failure reporting to the tap once the link is connected; a
// failure that came before is reported now. Before arm, connect reports.
func (t *tap) arm() {
	t.mu.Lock()
	t.armed = true
	f, closing := t.failed, t.closing
	t.mu.Unlock()
	if f != nil && !closing {
		t.sink.Post(f.ev, f.cause)
	}
}

// failure is why reading ended, or nil.
func (t *tap) failure() *event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// dead reports whether reading has ended, for whatever reason.
func (t *tap) dead() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err != nil
}

// shutdown closes the connection without reporting anything.
func (t *tap) shutdown() {
	t.mu.Lock()
	t.closing = true
	if t.err == nil {
		t.err = net.ErrClosed
	}
	t.mu.Unlock()
	if t.poller != nil {
		t.poller.cancel(t)
	}
	t.conn.Close()
	t.wakeReaders()
	signal(t.space)
	<-t.done
}

func parseRequestID(p []byte) (int64, error) {
	env, err := parseEnvelopeLoose(p)
	return env, err
}

// parseEnvelopeLoose reads only the message ID of an outbound message.
func parseEnvelopeLoose(p []byte) (int64, error) {
	// SEQUENCE header, then INTEGER.
	if len(p) < 5 || p[0] != 0x30 {
		return 0, ErrProtocol
	}
	i := 2
	if p[1]&0x80 != 0 {
		i += int(p[1] & 0x7f)
	}
	if i+2 > len(p) || p[i] != 0x02 {
		return 0, ErrProtocol
	}
	n := int(p[i+1])
	if n < 1 || n > 4 || i+2+n > len(p) {
		return 0, ErrProtocol
	}
	var id int64
	for _, b := range p[i+2 : i+2+n] {
		id = id<<8 | int64(b)
	}
	return id, nil
}

func protocolErrorf(format string, args ...any) error {
	return &wrapErr{ErrProtocol, format, args}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// retire lets go-ldap go: its reader sees EOF, what was queued for it is
// dropped, and any later message in its range of IDs is unsolicited. The
// socket stays open for the sync search and the probes, which the tap
// carries alone.
func (t *tap) retire() {
	t.mu.Lock()
	t.retired = true
	t.queue, t.cur = frames{}, nil
	t.mu.Unlock()
	signal(t.data)
	signal(t.space)
}

func (t *tap) isRetired() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.retired
}

// ldapSide is the tap as go-ldap's connection. Closing it retires go-ldap
// only: the socket is the link's (conn closes it with tap.shutdown), so a
// persisting link can end go-ldap's two goroutines and keep its socket.
type ldapSide struct{ *tap }

func (s ldapSide) Close() error { s.retire(); return nil }

// Remaining net.Conn methods: go-ldap uses only Read, Write and Close.
func (t *tap) Close() error                       { t.shutdown(); return nil }
func (t *tap) LocalAddr() net.Addr                { return t.conn.LocalAddr() }
func (t *tap) RemoteAddr() net.Addr               { return t.conn.RemoteAddr() }
func (t *tap) SetDeadline(d time.Time) error      { return t.conn.SetDeadline(d) }
func (t *tap) SetReadDeadline(d time.Time) error  { return nil }
func (t *tap) SetWriteDeadline(d time.Time) error { return t.conn.SetWriteDeadline(d) }
