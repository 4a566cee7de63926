package ldapadapter

import (
	"bufio"
	"io"
	"sync"
)

// burstBufferSize is the read buffer a tap holds while messages flow.
const burstBufferSize = 64 << 10

// burstBuffers are shared by every tap: a link holds one only while the
// provider is sending, so idle links cost no buffer.
var burstBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, burstBufferSize) }}

// frameReader reads whole LDAP messages from a connection with as few read
// calls as it can, without holding a buffer on an idle link. The first two
// bytes of a message are read straight from the connection, so a link
// waiting for the provider blocks there holding nothing; once bytes flow it
// takes a pooled bufio.Reader for the rest of the burst, and gives it back
// as soon as the buffer is drained. Errors are those of readFrame: the
// connection's own, unwrapped, with a short read made io.ErrUnexpectedEOF.
type frameReader struct {
	conn io.Reader
	max  int
	br   *bufio.Reader // nil between bursts
	hdr  [6]byte       // scratch for the header, so it is not allocated per frame
}

// next reads one message.
func (f *frameReader) next() ([]byte, error) {
	if f.br != nil {
		if _, err := io.ReadFull(f.br, f.hdr[:2]); err != nil {
			f.release()
			return nil, err
		}
	} else {
		if _, err := io.ReadFull(f.conn, f.hdr[:2]); err != nil {
			return nil, err
		}
		f.br = burstBuffers.Get().(*bufio.Reader)
		f.br.Reset(f.conn)
	}
	frame, err := readFrameRest(f.br, &f.hdr, f.max)
	if err != nil || f.br.Buffered() == 0 {
		f.release()
	}
	return frame, err
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
