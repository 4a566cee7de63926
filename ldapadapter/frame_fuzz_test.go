package ldapadapter

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzFrame feeds arbitrary bytes to what reads a provider's messages
// before go-ldap sees them: framing, the envelope, result codes. Whatever the
// input, no panic, no frame larger than the limit, and every failure an
// ErrProtocol or a short read.
func FuzzFrame(f *testing.F) {
	for _, seed := range [][]byte{
		whoAmIRequest(1), rootDSERequest(2), startTLSRequest(3), unbindRequest(4),
		{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},       // 2 GiB length prefix
		{0x30, 0x80, 0x00, 0x00},                   // indefinite length
		{0x30, 0x03, 0x02, 0x05, 0x01},             // truncated inside
		{0x30, 0x05, 0x02, 0x01, 0x00, 0x78, 0x00}, // ID 0, empty extended response
	} {
		f.Add(seed)
	}
	const max = 1 << 12
	f.Fuzz(func(t *testing.T, data []byte) {
		frame, err := readFrame(bytes.NewReader(data), max)
		// The tap's buffered reader, fed a byte at a time, agrees.
		f := frameReader{conn: iotest.OneByteReader(bytes.NewReader(data)), max: max}
		if got, gerr := f.next(); !bytes.Equal(got, frame) || (gerr == nil) != (err == nil) ||
			(err != nil && (errors.Is(gerr, ErrProtocol) != errors.Is(err, ErrProtocol) || errors.Is(gerr, io.ErrUnexpectedEOF) != errors.Is(err, io.ErrUnexpectedEOF))) {
			t.Fatalf("frameReader: %d bytes, %v; readFrame: %d bytes, %v", len(got), gerr, len(frame), err)
		}
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("readFrame: unexpected error kind: %v", err)
			}
			return
		}
		if len(frame) > max+6 {
			t.Fatalf("frame of %d bytes passed a limit of %d", len(frame), max)
		}
		if _, err := parseEnvelope(frame); err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("parseEnvelope: unexpected error kind: %v", err)
		}
		if _, _, err := resultCode(frame); err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("resultCode: unexpected error kind: %v", err)
		}
	})
}
