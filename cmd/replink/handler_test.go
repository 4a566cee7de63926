package main

import (
	"flag"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/ldapadapter"
)

// The handler the daemon gives each link's adapter must keep telling it
// that the cookie is committed with the changes: a wrapper that hid
// CommitsWithChanges made every batch save an extra "ahead" cookie (one
// more commit and fsync) and a 389-ds link reload in full after a kill.
func TestDaemonHandlerIsTransactional(t *testing.T) {
	dir := t.TempDir()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	links := newFlagConfig(fs)
	require.NoError(t, fs.Parse([]string{"--url", "ldap://127.0.0.1:1", "--base", "ou=p, dc=t", "--store", filepath.Join(dir, "r.db")}))
	cfg, err := links.config("", false, "", "text", slog.LevelInfo)
	require.NoError(t, err)
	w, err := feed.Open(filepath.Join(dir, "changes.jsonl"))
	require.NoError(t, err)
	d := newDaemon(cfg, "", slog.New(slog.NewTextHandler(io.Discard, nil)), w)
	d.mu.Lock()
	r, err := d.addLocked(cfg.Links[0])
	d.mu.Unlock()
	require.NoError(t, err)
	defer func() { require.NoError(t, d.shutdown()) }()

	ldapCfg := r.link.Config().LDAP
	_, ok := ldapCfg.Handler.(ldapadapter.TransactionalCookieStore)
	require.True(t, ok, "the link's handler (%T) hides CommitsWithChanges", ldapCfg.Handler)
	_, ok = ldapCfg.Cookies.(ldapadapter.TransactionalCookieStore)
	require.True(t, ok, "the link's cookie store (%T) is not transactional", ldapCfg.Cookies)
}
