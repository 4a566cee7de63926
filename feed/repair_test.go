package feed_test

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/feed/feedtest"
)

var quiet = feed.WithLogger(slog.New(slog.DiscardHandler))

// requireWhole says every line of b is a whole record and returns the DNs.
func requireWhole(t *testing.T, b []byte, what string) []string {
	t.Helper()
	require.True(t, len(b) == 0 || b[len(b)-1] == '\n', "%s ends a line", what)
	return records(t, b)
}

// A full disk is not for ever: while it is full every Sync fails and no
// line is ever left torn in the file; once space is freed the feed writes
// again without a restart. Every line whose Sync succeeded (whose change a
// commit may hold) is still there, in order; the lines cut were those of
// changes no commit covered, which the link sends again.
func TestFullDiskRecovers(t *testing.T) {
	f := feedtest.NewFile(nil)
	w, err := feed.New(f, quiet)
	require.NoError(t, err)
	var committed []string // lines a commit may hold: their Sync succeeded
	var batch []string
	write := func(dn string) {
		require.NoError(t, w.Write("l", change(dn), nil))
		batch = append(batch, dn)
	}
	commit := func() error {
		err := w.SyncFor("l")
		if err == nil {
			committed = append(committed, batch...)
		}
		batch = nil // a failed commit drops its changes: they come again
		return err
	}
	write("a")
	require.NoError(t, commit())

	f.MaxSize(len(f.Durable()) + 100) // the disk fills part-way into a line
	for round := range 5 {
		for i := range 3 {
			write("full" + strconv.Itoa(round) + "-" + strconv.Itoa(i))
		}
		err := commit()
		require.Error(t, err)
		require.True(t, errors.Is(err, feed.ErrFailed) || errors.Is(err, feed.ErrDropped), "%v", err)
		require.Equal(t, committed, requireWhole(t, f.Durable(), "the durable file"))
	}

	f.MaxSize(-1) // space is freed
	write("b")
	if err := commit(); err != nil {
		require.ErrorIs(t, err, feed.ErrDropped) // told once, then it carries on
		write("b")
		require.NoError(t, commit())
	}
	write("c")
	require.NoError(t, commit())
	require.NoError(t, w.Close())
	got := requireWhole(t, f.Written(), "the file")
	require.Equal(t, committed, got, "nothing durable lost, nothing torn")
	require.Equal(t, []string{"a", "b", "c"}, got)
}

// After a failed fsync nothing past the last fsynced line is trusted, even
// what the page cache still shows: the file is cut back to it before the
// next line.
func TestFailedFsyncCutsBackToDurable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(f *feedtest.File)
		heal   func(f *feedtest.File)
	}{
		{"fsync fails", func(f *feedtest.File) { f.FailSync(errors.New("EIO")) }, func(f *feedtest.File) { f.FailSync(nil) }},
		{"torn write", func(f *feedtest.File) { f.FailWrite(7, errors.New("EIO")) }, func(*feedtest.File) {}},
		{"disk full", func(f *feedtest.File) { f.MaxSize(len(f.Written()) + 10) }, func(f *feedtest.File) { f.MaxSize(-1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feedtest.NewFile(nil)
			w, err := feed.New(f, quiet)
			require.NoError(t, err)
			require.NoError(t, w.Write("l", change("a"), nil))
			require.NoError(t, w.Sync())
			durable := f.Durable()
			tc.inject(f)
			require.NoError(t, w.Write("l", change("b"), nil), "buffered")
			require.ErrorIs(t, w.SyncFor("l"), feed.ErrFailed) // b's commit fails: b comes again
			tc.heal(f)
			require.NoError(t, w.Write("l", change("c"), nil))
			require.Equal(t, durable, f.Written(), "cut back to the last fsynced line")
			require.NoError(t, w.SyncFor("l"))
			require.NoError(t, w.Close())
			require.Equal(t, []string{"a", "c"}, requireWhole(t, f.Written(), "the file"))
		})
	}
}

// Lines of several links are cut together; the Sync of each of them fails
// once (its commit holds the lost changes), those of others do not, and a
// plain Sync, which cannot tell its caller, fails until every such link
// has been told.
func TestDroppedLinesFailTheirLinksOnce(t *testing.T) {
	f := feedtest.NewFile(nil)
	w, err := feed.New(f, quiet)
	require.NoError(t, err)
	require.NoError(t, w.Write("a", change("a1"), nil))
	require.NoError(t, w.Write("b", change("b1"), nil))
	f.FailWrite(0, errors.New("ENOSPC"))
	require.ErrorIs(t, w.SyncFor("a"), feed.ErrFailed) // a's commit fails: a is told
	require.NoError(t, w.SyncFor("c"), "c lost nothing")
	require.ErrorIs(t, w.Sync(), feed.ErrDropped, "b not told yet")
	require.ErrorIs(t, w.SyncFor("b"), feed.ErrDropped)
	require.NoError(t, w.SyncFor("b"), "once")
	require.NoError(t, w.Sync())
	require.NoError(t, w.Write("b", change("b1"), nil)) // b1 came again
	require.NoError(t, w.Close())
	require.Equal(t, []string{"b1"}, requireWhole(t, f.Written(), "the file"))
}

// A repair is logged with the bytes cut.
func TestRepairIsLogged(t *testing.T) {
	f := feedtest.NewFile(nil)
	var logs bytes.Buffer
	w, err := feed.New(f, feed.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	require.NoError(t, err)
	f.FailWrite(7, errors.New("EIO"))
	require.NoError(t, w.Write("l", change("a"), nil))
	require.ErrorIs(t, w.Sync(), feed.ErrFailed)
	require.NoError(t, w.Close())
	require.Contains(t, logs.String(), "bytes=7")
	require.True(t, slices.Equal(nil, f.Written()))
}
