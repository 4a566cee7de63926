// Package feedtest has a feed.File in memory that injects the faults a
// disk has (a write that stops half-way, an fsync that fails, ENOSPC) and
// remembers what an fsync made durable, for crash tests of the feed.
package feedtest

import (
	"io"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/replink/replink/feed"
)

// File is a feed.File in memory. Its zero value is an empty file.
type File struct {
	mu        sync.Mutex
	data      []byte // what was written (the page cache)
	synced    int    // how much of data the last successful Sync made durable
	tearAt    int    // with armedTear: the next Write stops after this many bytes
	writeErr  error  // and fails with this
	syncErr   error
	onSync    func(durable []byte)
	closed    bool
	armedTear bool
	maxSize   int // with limited: the size the file cannot grow past
	limited   bool
}

var _ feed.File = (*File)(nil)

// NewFile returns a file holding data, all of it durable: the file a crash
// left.
func NewFile(data []byte) *File {
	return &File{data: append([]byte(nil), data...), synced: len(data)}
}

// FailWrite makes the next Write write the first n bytes it is given and
// fail with err: a torn write when n > 0, ENOSPC (syscall.ENOSPC) with
// n == 0. Later writes succeed.
func (f *File) FailWrite(n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tearAt, f.writeErr, f.armedTear = n, err, true
}

// MaxSize makes the disk full: the file cannot grow past n bytes, and a
// Write that would pass it writes what fits and fails with ENOSPC, as
// write(2) does. Truncating frees space again. n < 0 removes the limit:
// space was freed.
func (f *File) MaxSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maxSize, f.limited = n, n >= 0
}

// FailSync makes every Sync fail with err (nil: succeed again).
func (f *File) FailSync(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncErr = err
}

// OnSync calls fn, with the bytes made durable, after each successful Sync.
func (f *File) OnSync(fn func(durable []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onSync = fn
}

// Written is everything written, durable or not: the file as a crash of
// the process (not of the machine) leaves it.
func (f *File) Written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.data...)
}

// Durable is what the last successful Sync made durable: the file as a
// power loss leaves it.
func (f *File) Durable() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.data[:f.synced]...)
}

func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if f.armedTear {
		f.armedTear = false
		n := min(f.tearAt, len(p))
		f.data = append(f.data, p[:n]...)
		return n, f.writeErr
	}
	if f.limited && len(f.data)+len(p) > f.maxSize {
		n := max(0, f.maxSize-len(f.data))
		f.data = append(f.data, p[:n]...)
		return n, syscall.ENOSPC
	}
	f.data = append(f.data, p...)
	return len(p), nil
}

func (f *File) Sync() error {
	f.mu.Lock()
	if f.syncErr != nil {
		defer f.mu.Unlock()
		return f.syncErr
	}
	f.synced = len(f.data)
	fn, durable := f.onSync, append([]byte(nil), f.data...)
	f.mu.Unlock()
	if fn != nil {
		fn(durable)
	}
	return nil
}

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *File) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size < int64(len(f.data)) {
		f.data = f.data[:size]
		f.synced = min(f.synced, int(size))
	}
	return nil
}

func (f *File) Stat() (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return info{size: int64(len(f.data))}, nil
}

func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

type info struct{ size int64 }

func (i info) Name() string       { return "feedtest" }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return 0o600 }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }
