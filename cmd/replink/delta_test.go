package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/internal/slapdtest"
)

// The built binary follows a provider's accesslog with --log-base (after
// whole entries while the log has recorded nothing): /status
// says it is on the log and counts the bytes received, /metrics exports
// them, the feed's modify records say what changed, and the copy equals the
// provider after adds, modifies, renames and deletes.
func TestDaemonFollowsTheLog(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(50), slapdtest.WithAccesslog(""))
	dir := t.TempDir()
	store, changes := filepath.Join(dir, "replica.db"), filepath.Join(dir, "changes.jsonl")
	p := start(t, append(linkFlags(srv, passwordFile(t), store), "--log-base", slapdtest.LogDN, "--changes", changes, "--log-level", "debug")...)
	p.waitState("default", "Persisting", 20*time.Second)
	// A log that has recorded no write (the people were loaded with
	// slapadd) cannot place a cookie: slapd answers 53 until its first
	// write. The link follows the base with whole entries meanwhile.
	require.Equal(t, "syncrepl", p.status()[0].Protocol)
	require.NoError(t, srv.Write(1))
	require.Equal(t, http.StatusOK, p.post("/links/default/stop"))
	require.Equal(t, http.StatusOK, p.post("/links/default/start"))
	p.waitState("default", "Persisting", 20*time.Second)
	require.Eventually(t, func() bool { return p.status()[0].Protocol == "log" }, 10*time.Second, 20*time.Millisecond,
		"protocol %q", p.status()[0].Protocol)

	require.NoError(t, srv.Write(15)) // adds, modifies and renames
	require.NoError(t, srv.Delete(3))
	want, err := srv.Snapshot(t.Context(), slapdtest.PeopleDN)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.status()[0].Entries == len(want) }, 10*time.Second, 20*time.Millisecond, "entries %d, provider %d\n%s", p.status()[0].Entries, len(want), p.log())
	st := p.status()[0]
	require.Equal(t, "log", st.Protocol)
	require.Empty(t, st.Fallbacks)
	require.Positive(t, st.ReceivedBytes)
	_, metrics := p.get("/metrics")
	require.Regexp(t, regexp.MustCompile(`replink_received_bytes_total\{link="default"\} [1-9]`), metrics)
	require.Equal(t, 0, p.stop())
	requireSame(t, srv, dump(t, store, "default"))

	raw, err := os.ReadFile(changes)
	require.NoError(t, err)
	mods := 0
	require.NoError(t, feed.Replay(bytes.NewReader(raw), func(r feed.Record) error {
		for _, m := range r.Mods {
			if m.Attr == "description" {
				mods++
			}
		}
		return nil
	}))
	require.Positive(t, mods, "no modify record said what changed")
}
