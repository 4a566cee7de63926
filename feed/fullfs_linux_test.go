package feed_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
)

// smallFS mounts a tmpfs of 64 KiB for the test, or skips it: mounting
// needs root (CAP_SYS_ADMIN), which a test must not demand.
func smallFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(dir, 0)) }) // before TempDir's removal
	return dir
}

// A real full filesystem (ENOSPC, short writes included) is survived the
// same way: while it is full commits fail; once space is freed the feed
// writes again, and the file holds every line whose Sync succeeded, whole.
func TestFullFilesystemRecovers(t *testing.T) {
	dir := smallFS(t)
	filler := filepath.Join(dir, "filler")
	require.NoError(t, os.WriteFile(filler, make([]byte, 48<<10), 0o600))
	w, err := feed.Open(filepath.Join(dir, "changes.jsonl"), quiet)
	require.NoError(t, err)
	defer w.Close()

	var committed []string
	pad := strings.Repeat("x", 1000)
	full := 0
	for i := 0; i < 200 && full < 5; i++ {
		dn := strconv.Itoa(i) + pad
		require.NoError(t, w.Write("l", change(dn), nil))
		err := w.SyncFor("l")
		switch {
		case err == nil:
			committed = append(committed, dn)
		case errors.Is(err, syscall.ENOSPC), errors.Is(err, feed.ErrDropped):
			full++
		default:
			t.Fatal(err)
		}
	}
	require.Equal(t, 5, full, "the filesystem filled up")
	require.NotEmpty(t, committed)

	require.NoError(t, os.Remove(filler)) // space is freed
	require.NoError(t, w.Write("l", change("after"), nil))
	if err := w.SyncFor("l"); err != nil {
		require.ErrorIs(t, err, feed.ErrDropped)
		require.NoError(t, w.Write("l", change("after"), nil))
		require.NoError(t, w.SyncFor("l"))
	}
	require.NoError(t, w.Close())
	b, err := os.ReadFile(filepath.Join(dir, "changes.jsonl"))
	require.NoError(t, err)
	require.Equal(t, append(committed, "after"), requireWhole(t, b, "the file"))
}
