package feed_test

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink/feed"
)

const stall = 200 * time.Millisecond

// bounded runs fn and fails the test if it has not returned within d.
func bounded(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// A reader that stops reading (a full pipe) holds up Write, Sync and Close
// for the stall timeout at most, with ErrStalled; Close unblocks the
// goroutine blocked in write(2) with a write deadline, so nothing leaks.
func TestStreamStalledReaderIsBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, pw, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer pw.Close()
	w := feed.NewStream(pw, feed.WithStallTimeout(stall))
	big := change(strings.Repeat("x", 16<<10)) // the pipe holds a few, the queue some hundreds
	var werr error
	bounded(t, 30*time.Second, "Write", func() {
		for range 10_000 {
			if werr = w.Write("l", big, nil); werr != nil {
				return
			}
		}
	})
	require.ErrorIs(t, werr, feed.ErrStalled)
	start := time.Now()
	bounded(t, 5*time.Second, "Sync", func() { err = w.Sync() })
	require.ErrorIs(t, err, feed.ErrStalled)
	require.GreaterOrEqual(t, time.Since(start), stall, "waits the stall timeout")
	bounded(t, 5*time.Second, "Close", func() { err = w.Close() })
	require.ErrorIs(t, err, feed.ErrStalled)
	require.NotContains(t, err.Error(), "abandoned", "a pipe takes a write deadline")
	require.ErrorIs(t, w.Close(), feed.ErrClosed)
}

// A stall is not for ever: once the reader reads again, Sync succeeds
// and every line queued reaches it whole, in order.
func TestStreamResumesAfterStall(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, pw, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer pw.Close()
	w := feed.NewStream(pw, feed.WithStallTimeout(stall))
	var want []string
	bounded(t, 5*time.Second, "Write", func() {
		for i := range 16 { // 256 KiB: more than a pipe holds
			dn := strconv.Itoa(i) + strings.Repeat("x", 16<<10)
			require.NoError(t, w.Write("l", change(dn), nil))
			want = append(want, dn)
		}
	})
	require.ErrorIs(t, w.Sync(), feed.ErrStalled)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	require.NoError(t, w.Sync())
	require.NoError(t, w.Close())
	require.NoError(t, pw.Close())
	require.Equal(t, want, records(t, <-got))
}

// A writer without a write deadline (a blocking stdout) cannot be
// unblocked: Close still returns within its bound and abandons it.
func TestStreamCloseAbandonsAWriterItCannotUnblock(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	blocked := writerFunc(func(p []byte) (int, error) { <-release; return len(p), nil })
	w := feed.NewStream(blocked, feed.WithStallTimeout(stall))
	require.NoError(t, w.Write("l", change("a"), nil))
	var err error
	bounded(t, 5*time.Second, "Close", func() { err = w.Close() })
	require.ErrorIs(t, err, feed.ErrStalled)
	require.Contains(t, err.Error(), "abandoned")
	close(release)
}

// A reader gone (the read end closed: EPIPE) is ErrReaderGone on every
// later call, never a crash.
func TestStreamReaderGone(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pw.Close()
	require.NoError(t, r.Close())
	w := feed.NewStream(pw, feed.WithStallTimeout(stall))
	require.NoError(t, w.Write("l", change("a"), nil), "queued")
	require.ErrorIs(t, w.Sync(), feed.ErrReaderGone)
	require.ErrorIs(t, w.Write("l", change("b"), nil), feed.ErrReaderGone)
	require.ErrorIs(t, w.Close(), feed.ErrReaderGone)
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
