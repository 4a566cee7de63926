package feed_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/feed/feedtest"
	"github.com/replink/replink/ldapadapter"
)

func change(dn string) ldapadapter.Change {
	return ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: dn,
		Entry: entry(dn, map[string][][]byte{"cn": {[]byte(dn)}})}
}

// records replays b whole and returns the DNs.
func records(t *testing.T, b []byte) []string {
	t.Helper()
	var dns []string
	require.NoError(t, feed.Replay(bytes.NewReader(b), func(r feed.Record) error {
		dns = append(dns, r.DN)
		return nil
	}))
	return dns
}

func whole(t *testing.T, dns ...string) []byte {
	var out bytes.Buffer
	w := feed.NewStream(&out, feed.WithClock(clock))
	for _, dn := range dns {
		require.NoError(t, w.Write("l", change(dn), nil))
	}
	require.NoError(t, w.Close()) // the stream's goroutine has written every line
	return out.Bytes()
}

// A torn last line (a crash in the middle of a write) is cut when the feed
// is opened, so the next record starts a line of its own.
func TestNewCutsTornTail(t *testing.T) {
	two := whole(t, "a", "b")
	long := whole(t, strings.Repeat("x", 200<<10)) // a line longer than the read-back chunk
	for _, tc := range []struct {
		name    string
		data    []byte
		cut     int
		wantDNs []string
	}{
		{"empty", nil, 0, nil},
		{"whole", two, 0, []string{"a", "b"}},
		{"torn last line", append(two[:len(two):len(two)], `{"time":"2026`...), 13, []string{"a", "b"}},
		{"newline lost", two[:len(two)-1], len(two) - 2 - bytes.IndexByte(two, '\n'), []string{"a"}},
		{"one torn line only", []byte(`{"op":"ups`), 10, nil},
		{"torn after a long line", append(long[:len(long):len(long)], `{"x`...), 3, []string{strings.Repeat("x", 200<<10)}},
		{"torn long line", append(two[:len(two):len(two)], long[:len(long)-5]...), len(long) - 5, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feedtest.NewFile(tc.data)
			var logs bytes.Buffer
			w, err := feed.New(f, feed.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			require.Equal(t, len(tc.data)-tc.cut, len(f.Durable()), "cut and fsynced")
			if tc.cut > 0 {
				require.Contains(t, logs.String(), "bytes="+strconv.Itoa(tc.cut))
			} else {
				require.Empty(t, logs.String())
			}
			require.NoError(t, w.Write("l", change("c"), nil))
			require.NoError(t, w.Close())
			require.Equal(t, append(tc.wantDNs, "c"), records(t, f.Written()), "every line whole")
		})
	}
}

// Open repairs a real file the same way: after a restart every line is
// whole JSON.
func TestOpenCutsTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "changes.jsonl")
	w, err := feed.Open(path)
	require.NoError(t, err)
	require.NoError(t, w.Write("l", change("a"), nil))
	require.NoError(t, w.Close())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"time":"2026-11-26T07:0`) // the crash
	require.NoError(t, err)
	require.NoError(t, f.Close())

	w, err = feed.Open(path, feed.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, w.Write("l", change("b"), nil))
	require.NoError(t, w.Close())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, records(t, b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// A feed file that exists with a looser mode (made by hand, or by an older
// replink) is made 0600 when opened, and the log says so: the feed holds
// password hashes.
func TestOpenTightensMode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   os.FileMode
		logged bool
	}{
		{"world readable", 0o644, true},
		{"group writable", 0o660, true},
		{"already private", 0o600, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "changes.jsonl")
			require.NoError(t, os.WriteFile(path, whole(t, "a"), tc.mode))
			require.NoError(t, os.Chmod(path, tc.mode)) // whatever the umask
			var logs bytes.Buffer
			w, err := feed.Open(path, feed.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			require.NoError(t, w.Close())
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			if tc.logged {
				require.Contains(t, logs.String(), "was="+tc.mode.String())
			} else {
				require.Empty(t, logs.String())
			}
		})
	}
}

// Sync with no line since the last one costs no fsync.
func TestSyncOnlyWhenDirty(t *testing.T) {
	f := feedtest.NewFile(nil)
	syncs := 0
	f.OnSync(func([]byte) { syncs++ })
	w, err := feed.New(f)
	require.NoError(t, err)
	require.NoError(t, w.Sync())
	require.Zero(t, syncs)
	require.NoError(t, w.Write("l", change("a"), nil))
	require.NoError(t, w.Sync())
	require.NoError(t, w.Sync())
	require.Equal(t, 1, syncs)
	require.NoError(t, w.Close())
	require.ErrorIs(t, w.Close(), feed.ErrClosed)
	require.ErrorIs(t, w.Write("l", change("b"), nil), feed.ErrClosed)
}

func TestReplay(t *testing.T) {
	two := whole(t, "a", "b")
	for _, tc := range []struct {
		name    string
		in      []byte
		wantDNs []string
		err     error
		line    int
	}{
		{"whole", two, []string{"a", "b"}, nil, 0},
		{"empty", nil, nil, nil, 0},
		{"torn tail", append(two[:len(two):len(two)], `{"ti`...), []string{"a", "b"}, feed.ErrTornLine, 3},
		{"malformed line", append([]byte("{}\n"), two...), nil, feed.ErrMalformed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := feed.Replay(bytes.NewReader(tc.in), func(r feed.Record) error {
				got = append(got, r.DN)
				return nil
			})
			require.Equal(t, tc.wantDNs, got)
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.err)
			var le *feed.LineError
			require.ErrorAs(t, err, &le)
			require.Equal(t, tc.line, le.Line)
		})
	}
	stop := errors.New("stop")
	require.ErrorIs(t, feed.Replay(bytes.NewReader(two), func(feed.Record) error { return stop }), stop)
}
