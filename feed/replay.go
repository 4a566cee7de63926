package feed

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Replay calls fn with every record of the feed r, in order, and stops at
// the first error, fn's or a *LineError. Lines may be of any length (a
// photo makes a long one). If r ends in a partial line, every whole record
// is delivered first, then a *LineError wrapping ErrTornLine: the feed is
// being written, or a crash cut it (Open repairs that).
func Replay(r io.Reader, fn func(Record) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(b) == 0 {
				return nil
			}
			return &LineError{Line: n, Err: ErrTornLine}
		}
		if err != nil {
			return err
		}
		rec, err := Decode(bytes.TrimSuffix(b, []byte{'\n'}))
		if err != nil {
			return &LineError{Line: n, Err: err}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
