package ldapadapter

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

// chunked serves data in reads of at most n bytes, as a socket would.
type chunked struct {
	data []byte
	n    int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.data))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// A frameReader returns the frames readFrame returns, whatever the reads
// the connection makes, then io.EOF at a frame boundary.
func TestFrameReaderMatchesReadFrame(t *testing.T) {
	big := make([]byte, 100000) // longer than the buffer: a 3-byte length
	big[0], big[1], big[2], big[3], big[4] = 0x30, 0x83, 0x01, 0x86, 0x9b
	msgs := [][]byte{whoAmIRequest(1), rootDSERequest(2), big, startTLSRequest(3), unbindRequest(4)}
	stream := bytes.Join(msgs, nil)
	for _, n := range []int{1, 2, 3, 7, 100, 1 << 20} {
		f := frameReader{conn: &chunked{data: stream, n: n}, max: 1 << 20}
		for i, want := range msgs {
			got, err := f.next()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("reads of %d: frame %d: %v, %d bytes, want %d", n, i, err, len(got), len(want))
			}
		}
		if _, err := f.next(); err != io.EOF {
			t.Fatalf("reads of %d: after the last frame: %v, want io.EOF", n, err)
		}
		if f.br != nil {
			t.Fatalf("reads of %d: buffer held after EOF", n)
		}
	}
}

// The buffer is held while it holds bytes, and given back once drained,
// so a link waiting for the provider holds none.
func TestFrameReaderReleasesBufferWhenDrained(t *testing.T) {
	a, b := whoAmIRequest(1), whoAmIRequest(2)
	f := frameReader{conn: &chunked{data: append(append([]byte{}, a...), b...), n: 1 << 20}, max: 1 << 12}
	if _, err := f.next(); err != nil {
		t.Fatal(err)
	}
	if f.br == nil {
		t.Fatal("buffer given back while it holds the next frame")
	}
	if _, err := f.next(); err != nil {
		t.Fatal(err)
	}
	if f.br != nil {
		t.Fatal("buffer kept once drained")
	}
}

// Errors are those of readFrame: a short read is io.ErrUnexpectedEOF, a
// length over the limit is refused before the body is read, a deadline
// is the connection's own error.
func TestFrameReaderErrors(t *testing.T) {
	msg := whoAmIRequest(1)
	f := frameReader{conn: iotest.OneByteReader(bytes.NewReader(msg[:len(msg)-1])), max: 1 << 12}
	if _, err := f.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v", err)
	}
	f = frameReader{conn: bytes.NewReader([]byte{0x30}), max: 1 << 12}
	if _, err := f.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated header: %v", err)
	}
	f = frameReader{conn: bytes.NewReader([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}), max: 1 << 12}
	if _, err := f.next(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("2 GiB length: %v", err)
	}
	if f.br != nil {
		t.Fatal("buffer kept after an error")
	}

	c, p := net.Pipe()
	defer c.Close()
	defer p.Close()
	go p.Write(msg[:3]) // the header, then nothing
	f = frameReader{conn: c, max: 1 << 12}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := f.next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline inside a frame: %v", err)
	}
	if f.br != nil {
		t.Fatal("buffer kept after an error")
	}
}

// The probe written in place is, byte for byte, the WhoAmI request the BER
// encoder builds, for every ID it accepts; others are refused.
func TestAppendWhoAmIMatchesEncoder(t *testing.T) {
	for _, tc := range []struct {
		id int64
		ok bool
	}{
		{probeIDBase + 1, true}, {1 << 24, true}, {1<<31 - 1, true}, {0x7f00ff01, true},
		{1<<24 - 1, false}, {1 << 31, false}, {7, false},
	} {
		got, ok := appendWhoAmI(nil, tc.id)
		if ok != tc.ok {
			t.Fatalf("id %#x: ok %v, want %v", tc.id, ok, tc.ok)
		}
		if ok && !bytes.Equal(got, whoAmIRequest(tc.id)) {
			t.Fatalf("id %#x: % x, want % x", tc.id, got, whoAmIRequest(tc.id))
		}
		if ok && len(got) != whoAmILen {
			t.Fatalf("id %#x: %d bytes, want %d", tc.id, len(got), whoAmILen)
		}
	}
}

// tcpPair is a connected pair of loopback TCP sockets.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	s, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// On a plain socket, the frameReader waits for readability holding no
// buffer and fills one with a single read: every frame comes out whole
// whatever the writes it was sent in, a frame longer than the buffer
// included, and the end is io.EOF at a boundary, a reset, or the
// connection's own error once closed.
func TestFrameReaderOnSocket(t *testing.T) {
	big := make([]byte, 100000)
	big[0], big[1], big[2], big[3], big[4] = 0x30, 0x83, 0x01, 0x86, 0x9b
	msgs := [][]byte{whoAmIRequest(1), rootDSERequest(2), big, startTLSRequest(3), unbindRequest(4)}
	stream := bytes.Join(msgs, nil)
	for _, tc := range []struct {
		name  string
		chunk int // bytes per write
		end   func(c, s *net.TCPConn)
		want  func(error) bool
	}{
		{"whole, then FIN", len(stream), func(c, s *net.TCPConn) { s.Close() }, func(err error) bool { return err == io.EOF }},
		{"in 3-byte writes, then FIN", 3, func(c, s *net.TCPConn) { s.Close() }, func(err error) bool { return err == io.EOF }},
		{"in 1000-byte writes, then reset", 1000, func(c, s *net.TCPConn) { s.SetLinger(0); s.Close() },
			func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"whole, then closed by the reader's side", len(stream), func(c, s *net.TCPConn) { c.Close() },
			func(err error) bool { return errors.Is(err, net.ErrClosed) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			raw, err := c.SyscallConn()
			require.NoError(t, err)
			f := frameReader{conn: c, raw: raw, max: 1 << 20}
			go func() {
				for b := stream; len(b) > 0; b = b[min(tc.chunk, len(b)):] {
					if _, err := s.Write(b[:min(tc.chunk, len(b))]); err != nil {
						return
					}
				}
			}()
			for i, want := range msgs {
				got, err := f.next()
				require.NoError(t, err, "frame %d", i)
				require.Equal(t, want, got, "frame %d", i)
			}
			require.Nil(t, f.br, "buffer held after the last frame")
			tc.end(c, s)
			_, err = f.next()
			require.True(t, tc.want(err), "after the last frame: %v", err)
			require.Nil(t, f.br, "buffer held after the end")
		})
	}
}

// BenchmarkFrameReaderSmallFrame reads one keepalive-answer-sized frame
// per operation off a loopback socket, through the connection (the path a
// TLS link takes: the header, then the rest) and through the raw socket
// (one read into the pooled buffer). Compare the two ns/op of one run.
func BenchmarkFrameReaderSmallFrame(b *testing.B) {
	frame := append(whoAmIRequest(probeIDBase+1), make([]byte, 20)...)
	frame[1] += 20 // a 55-byte message, about slapd's WhoAmI answer
	for _, raw := range []bool{false, true} {
		name := map[bool]string{false: "conn", true: "raw"}[raw]
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(b, err)
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(b, err)
			defer c.Close()
			s, err := ln.Accept()
			require.NoError(b, err)
			defer s.Close()
			f := frameReader{conn: c, max: 1 << 12}
			if raw {
				f.raw, err = c.(*net.TCPConn).SyscallConn()
				require.NoError(b, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Write(frame); err != nil {
					b.Fatal(err)
				}
				if got, err := f.next(); err != nil || len(got) != len(frame) {
					b.Fatal(err, len(got))
				}
			}
		})
	}
}
