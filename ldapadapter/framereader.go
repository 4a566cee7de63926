package ldapadapter

import (
	"bufio"
	"io"
	"os"
	"sync"
	"syscall"
)

// burstBufferSize is the read buffer a tap holds while messages flow.
const burstBufferSize = 64 << 10

// burstBuffers are shared by every tap: a link holds one only while the
// provider is sending, so idle links cost no buffer.
var burstBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, burstBufferSize) }}

// frameReader reads whole LDAP messages from a connection with as few read
// calls as it can, without holding a buffer on an idle link. Once bytes
// flow it reads through a pooled bufio.Reader, given back as soon as it is
// drained. Between bursts it holds nothing: on a plain socket (raw set) it
// waits for readability in the runtime's poller and, once readable, takes
// a buffer and fills it with one read(2), so a small message such as a
// keepalive answer costs that read and the one that found the socket
// empty; elsewhere (TLS, tests) it reads the first two bytes of the next
// message straight from the connection. Errors are those of readFrame: the
// connection's own, unwrapped, with a short read made io.ErrUnexpectedEOF.
type frameReader struct {
	conn io.Reader
	raw  syscall.RawConn // conn's socket, or nil
	max  int
	br   *bufio.Reader // nil between bursts
	src  source        // what br reads from
	hdr  [6]byte       // scratch for the header, so it is not allocated per frame
	// fill is the raw read callback, made once: a closure made per wait
	// would be two allocations per message.
	fill    func(fd uintptr) bool
	fillErr error // what fill's read returned
	// idle, if set, is the Consumer's poller, where a socket found empty
	// may wait; what the poller read comes back with it.
	idle  idleWaiter
	try   func(fd uintptr) // fill made once for RawConn.Control
	tried bool             // what try's fill returned
}

// idleWaiter is where a frameReader waits between bursts instead of on
// its own: waitIdle blocks until bytes, an error or end of file came, and
// returns the bytes read for it; ok false: the socket was not taken.
type idleWaiter interface {
	idleReady() bool
	waitIdle() (pending []byte, ok bool, err error)
}

// source is the reader under a frameReader's buffer: the connection, or,
// inside a raw read callback, the socket's descriptor, read once.
type source struct {
	conn    io.Reader
	fd      int    // >= 0: read the descriptor directly
	pending []byte // read already, by the poller: served first
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	if s.fd < 0 {
		return s.conn.Read(p)
	}
	for {
		n, err := syscall.Read(s.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, err
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// next reads one message.
func (f *frameReader) next() ([]byte, error) {
	switch {
	case f.br == nil && f.raw == nil:
		if _, err := io.ReadFull(f.conn, f.hdr[:2]); err != nil {
			return nil, err
		}
		f.take(-1)
	default:
		if f.br == nil {
			if err := f.await(); err != nil {
				return nil, err
			}
		}
		if _, err := io.ReadFull(f.br, f.hdr[:2]); err != nil {
			f.release()
			return nil, err
		}
	}
	frame, err := readFrameRest(f.br, &f.hdr, f.max)
	if err != nil || f.br.Buffered() == 0 {
		f.release()
	}
	return frame, err
}

// await waits, holding no buffer, until the socket is readable, then takes
// a buffer and fills it with one read(2). The read that finds the socket
// empty cannot be spared: the runtime's poller forgets an earlier
// readiness when a wait begins, so only a read that fails with EAGAIN
// makes waiting safe.
func (f *frameReader) await() error {
	if f.fill == nil {
		f.fill = f.fillOnce
		f.try = func(fd uintptr) { f.tried = f.fillOnce(fd) }
	}
	if f.idle != nil && f.idle.idleReady() {
		if ok, err := f.awaitIdle(); ok {
			return err
		}
	}
	err := f.raw.Read(f.fill)
	ferr := f.fillErr
	f.fillErr = nil
	if err == nil {
		err = ferr
	}
	if err != nil {
		f.release()
	}
	return err
}

// awaitIdle is await through the poller: one read, and if the socket was
// empty, a wait in the poller, which hands the socket back with what it
// read. ok is false if the poller could not take the socket.
func (f *frameReader) awaitIdle() (ok bool, err error) {
	err = f.raw.Control(f.try)
	if err == nil && f.tried {
		err = f.fillErr
	}
	f.fillErr = nil
	switch {
	case err != nil:
		f.release()
		return true, err
	case f.tried:
		return true, nil
	}
	pending, ok, err := f.idle.waitIdle()
	switch {
	case !ok:
		return false, nil
	case err != nil:
		return true, err
	}
	f.take(-1)
	f.src.pending = pending
	return true, nil
}

// fillOnce is the callback of await: one read(2) into a buffer taken for
// it, given back at once if the socket had nothing.
func (f *frameReader) fillOnce(fd uintptr) bool {
	f.take(int(fd))
	_, f.fillErr = f.br.Peek(1) // one read(2) into the buffer
	if f.fillErr == syscall.EAGAIN {
		f.release() // nothing yet: wait holding nothing
		return false
	}
	f.src.fd = -1 // the rest of the burst: through the connection
	return true
}

// take gets a buffer from the pool, reading from fd (or the connection).
func (f *frameReader) take(fd int) {
	f.src = source{conn: f.conn, fd: fd}
	f.br = burstBuffers.Get().(*bufio.Reader)
	f.br.Reset(&f.src)
}

// release gives the buffer back, dropping whatever it holds.
func (f *frameReader) release() {
	if f.br == nil {
		return
	}
	f.br.Reset(nil)
	burstBuffers.Put(f.br)
	f.br = nil
}
