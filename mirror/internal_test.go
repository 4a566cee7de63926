package mirror

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The handler the mirror gives each link's adapter must keep telling it
// that the cookie is committed with the changes: a wrapper that hid
// CommitsWithChanges made every batch save an extra "ahead" cookie (one
// more commit and fsync) and a 389-ds link reload in full after a kill.
func TestMirrorHandlerIsTransactional(t *testing.T) {
	dir := t.TempDir()
	w, err := feed.Open(filepath.Join(dir, "changes.jsonl"))
	require.NoError(t, err)
	m, err := New(Config{Feed: w, Logger: quietLog(), Links: []LinkConfig{{
		Name: "people", Store: filepath.Join(dir, "r.db"), Machine: fsm.DefaultConfig(),
		LDAP: ldapadapter.Config{URL: "ldap://127.0.0.1:1", DialContext: refuseDial, BaseDN: "ou=p,dc=t"},
	}}})
	require.NoError(t, err)
	defer func() { require.NoError(t, m.Close()) }()

	ldapCfg := m.links["people"].link.Config().LDAP
	_, ok := ldapCfg.Handler.(ldapadapter.TransactionalCookieStore)
	require.True(t, ok, "the link's handler (%T) hides CommitsWithChanges", ldapCfg.Handler)
	_, ok = ldapCfg.Cookies.(ldapadapter.TransactionalCookieStore)
	require.True(t, ok, "the link's cookie store (%T) is not transactional", ldapCfg.Cookies)
}

// refuseDial is a provider nobody can reach, whatever listens on the
// machine.
func refuseDial(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("unreachable (test)")
}
