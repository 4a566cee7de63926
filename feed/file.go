package feed

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
)

// File is what a Writer writes to: an *os.File opened for appending, or a
// test's stand-in that injects faults (a write that stops half-way, an
// fsync that fails, ENOSPC). Writes append at the end of the file;
// ReadAt, Stat and Truncate let New cut a torn last line.
type File interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Stat() (fs.FileInfo, error)
	Close() error
}

// cutTornTail truncates f after its last newline if it does not end in one
// (a line whose write a crash interrupted), fsyncs it, and says how many
// bytes it kept and cut. The next line would otherwise be glued to the
// torn one.
func cutTornTail(f File) (keep, cut int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := fi.Size()
	const chunk = 64 << 10
	// keep stays 0 without a newline at all: the whole file is one torn line.
	for end := size; end > 0; {
		start := max(0, end-chunk)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return 0, 0, err
		}
		if end == size && buf[len(buf)-1] == '\n' {
			return size, 0, nil // whole
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			keep = start + int64(i) + 1
			break
		}
		end = start
	}
	if keep == size {
		return size, 0, nil
	}
	if err := f.Truncate(keep); err != nil {
		return 0, 0, fmt.Errorf("cut torn line: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("cut torn line: %w", err)
	}
	return keep, size - keep, nil
}

// logCut reports a cut torn line.
func logCut(log *slog.Logger, name string, n int64) {
	if n > 0 {
		log.Warn("change feed: cut a torn last line; its change comes again", "file", name, "bytes", n)
	}
}

// tightenMode makes an existing feed file 0600, as a new one is made: a
// feed holds every attribute of every entry, password hashes included.
// It changes the open file (fchmod), not whatever the path names by now.
func tightenMode(f *os.File, log *slog.Logger) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == 0o600 {
		return nil
	}
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("make the feed private (0600): %w", err)
	}
	log.Warn("change feed: made the file readable by its owner only", "file", f.Name(), "was", fi.Mode().Perm().String(), "now", "-rw-------")
	return nil
}
