package mirror_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
	"github.com/replink/replink/store"
)

// unreachable is a link to a provider that refuses connections: it runs
// (retrying) without a server.
func unreachable(name, storePath string) mirror.LinkConfig {
	m := fsm.DefaultConfig()
	m.Backoff.Initial = 50 * time.Millisecond
	return mirror.LinkConfig{Name: name, Store: storePath, Machine: m,
		LDAP: ldapadapter.Config{URL: "ldap://127.0.0.1:1", DialContext: refuseDial, BaseDN: "ou=p,dc=t", StopTimeout: 200 * time.Millisecond}}
}

// refuseDial is a provider nobody can reach, whatever listens on the
// machine.
func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("unreachable (test)")
}

// run starts m in the background; the cleanup waits for Run to return.
func run(t *testing.T, m *mirror.Mirror) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of its context ending")
		}
	})
}

func names(m *mirror.Mirror) []string {
	var out []string
	for _, s := range m.Status() {
		out = append(out, s.Name)
	}
	return out
}

// storeLinks lists the links a store file holds, opened afresh: it fails
// if the mirror still holds the file.
func storeLinks(t *testing.T, path string) []string {
	t.Helper()
	db, err := store.Open(path, &store.Options{ReadOnly: true})
	require.NoError(t, err, "the store is still held")
	defer db.Close()
	ls, err := db.Links()
	require.NoError(t, err)
	return ls
}

// A configuration that renames link people to gone and adds a link whose
// store directory is missing is rejected whole: people still runs, as it
// was, and gone was never created.
func TestReloadIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared.db")
	m, err := mirror.New(mirror.Config{Logger: slog.New(slog.DiscardHandler), Links: []mirror.LinkConfig{unreachable("people", shared)}})
	require.NoError(t, err)
	run(t, m)
	require.Eventually(t, func() bool { return len(m.Status()[0].Recent) >= 2 }, 5*time.Second, 10*time.Millisecond)
	before := m.Status()[0]

	err = m.Reload(context.Background(), mirror.Config{Links: []mirror.LinkConfig{
		unreachable("gone", shared),
		unreachable("extra", filepath.Join(dir, "missing", "extra.db")),
	}})
	require.ErrorContains(t, err, "missing")
	require.Equal(t, []string{"people"}, names(m), "the running links are left as they are")
	after := m.Status()[0]
	require.NotEqual(t, "Stopped", after.State)
	require.Equal(t, before.Recent[0], after.Recent[0], "people was not restarted")
	for _, tr := range after.Recent {
		require.NotContains(t, tr.Event, "reconfigure")
	}

	// The same configuration, its mistake fixed, is applied whole.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "missing"), 0o700))
	require.NoError(t, m.Reload(context.Background(), mirror.Config{Links: []mirror.LinkConfig{
		unreachable("gone", shared),
		unreachable("extra", filepath.Join(dir, "missing", "extra.db")),
	}}))
	require.Equal(t, []string{"extra", "gone"}, names(m))
}

// A rejected configuration leaves no trace in the stores it opened: no
// link created for it, no file held.
func TestRejectedReloadCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	m, err := mirror.New(mirror.Config{Logger: slog.New(slog.DiscardHandler), Links: []mirror.LinkConfig{unreachable("people", a)}})
	require.NoError(t, err)
	bad := unreachable("bad", filepath.Join(dir, "nodir", "c.db"))
	require.Error(t, m.Reload(context.Background(), mirror.Config{Links: []mirror.LinkConfig{
		unreachable("people", a), unreachable("staff", a), unreachable("other", b), bad,
	}}))
	require.NoError(t, m.Close())
	require.Equal(t, []string{"people"}, storeLinks(t, a), "staff was created in a and left there")
	require.NoFileExists(t, b, "the file opened for the rejected configuration is left behind")
}

// One file spelled two ways is one store, not a lock conflict with
// itself; a store no link uses after a reload is closed.
func TestStoreSpelledTwoWaysIsOneStore(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	m, err := mirror.New(mirror.Config{Logger: slog.New(slog.DiscardHandler), Links: []mirror.LinkConfig{
		unreachable("people", "shared.db"), unreachable("staff", "./shared.db"),
	}})
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Reload(context.Background(), mirror.Config{Links: []mirror.LinkConfig{
		unreachable("people", filepath.Join(dir, "other.db")), unreachable("staff", filepath.Join(dir, "other.db")),
	}}))
	require.ElementsMatch(t, []string{"people", "staff"}, storeLinks(t, "shared.db"), "shared.db is closed once no link uses it")
}

// A store deleted under the running mirror fails its links with a clear
// cause: Failed in Status, 503 from /healthz, an ERROR line.
func TestDeletedStoreFailsItsLinks(t *testing.T) {
	dir := t.TempDir()
	gone, kept := filepath.Join(dir, "gone.db"), filepath.Join(dir, "kept.db")
	var logs syncBuffer
	m, err := mirror.New(mirror.Config{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), StoreCheckInterval: 20 * time.Millisecond,
		Links: []mirror.LinkConfig{unreachable("people", gone), unreachable("staff", kept)},
	})
	require.NoError(t, err)
	run(t, m)
	require.NoError(t, os.Remove(gone))
	require.Eventually(t, func() bool { return m.Status()[0].State == "Failed" }, 5*time.Second, 10*time.Millisecond)
	st := m.Status()
	require.Contains(t, st[0].LastCause, "deleted or replaced")
	require.Contains(t, st[0].LastCause, gone)
	require.NotEqual(t, "Failed", st[1].State, "another store's link is not touched")
	require.Contains(t, logs.String(), "level=ERROR")

	r, err := http.NewRequest("GET", "/healthz", nil)
	require.NoError(t, err)
	r.Host = "localhost:80"
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, r)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "people")
}

// A store replaced by another file at the same path is gone just the same.
func TestReplacedStoreFailsItsLinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.db")
	m, err := mirror.New(mirror.Config{Logger: slog.New(slog.DiscardHandler), StoreCheckInterval: 20 * time.Millisecond,
		Links: []mirror.LinkConfig{unreachable("people", path)}})
	require.NoError(t, err)
	run(t, m)
	require.NoError(t, os.Rename(path, path+".old"))
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.Eventually(t, func() bool { return m.Status()[0].State == "Failed" }, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, m.Status()[0].LastCause, "another file")
}
