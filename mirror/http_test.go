package mirror_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
	"github.com/replink/replink/store"
)

const (
	listenAddr = "127.0.0.1:8389"
	ada        = "uid=ada,ou=p,dc=t"
	adaHash    = "{SSHA}c2VjcmV0LWhhc2gtb2YtYWRh"
)

// admin is a mirror, never run, whose link "people" holds Ada with her
// password hash, and its real Handler.
type admin struct {
	t   *testing.T
	m   *mirror.Mirror
	h   http.Handler
	log *bytes.Buffer
}

func newAdmin(t *testing.T, hc mirror.HTTPConfig) *admin {
	t.Helper()
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := store.Open(path, nil)
	require.NoError(t, err)
	sl, err := db.Link("people", people)
	require.NoError(t, err)
	require.NoError(t, sl.Apply(context.Background(), ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: ada,
		Entry: ldap.NewEntry(ada, map[string][]string{"cn": {"Ada"}, "userPassword": {adaHash}, "mail": {"ada@example.com"}})}))
	require.NoError(t, sl.Save([]byte("c1")))
	require.NoError(t, db.Close())

	var logs bytes.Buffer
	m, err := mirror.New(mirror.Config{HTTP: hc, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Links: []mirror.LinkConfig{{
		Name: "people", Store: path, Machine: fsm.DefaultConfig(),
		LDAP: ldapadapter.Config{URL: "ldap://127.0.0.1:1", DialContext: refuseDial, BaseDN: "ou=p,dc=t"},
	}}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return &admin{t: t, m: m, h: m.Handler(), log: &logs}
}

// do sends one request through the handler; hdr is name, value, ...
func (a *admin) do(method, host, path string, hdr ...string) (int, string) {
	r := httptest.NewRequest(method, path, nil)
	r.Host = host
	r.RemoteAddr = "127.0.0.1:50000"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// DNS rebinding: a page on evil.example whose name now resolves to
// 127.0.0.1 sends Host: evil.example:8389. It must not read the copy.
func TestForeignHostIsRefused(t *testing.T) {
	a := newAdmin(t, mirror.HTTPConfig{Addr: listenAddr})
	for _, path := range []string{"/links/people/ldif", "/status", "/metrics", "/healthz"} {
		code, body := a.do("GET", "evil.example:8389", path)
		require.Equal(t, http.StatusMisdirectedRequest, code, path)
		require.NotContains(t, body, "ada")
	}
	code, _ := a.do("POST", "evil.example:8389", "/links/people/stop")
	require.Equal(t, http.StatusMisdirectedRequest, code)
	for _, host := range []string{"127.0.0.1:8389", "localhost:8389", "LocalHost:8389", "[::1]:8389", "127.0.0.2:8389"} {
		code, body := a.do("GET", host, "/links/people/ldif")
		require.Equal(t, http.StatusOK, code, host)
		require.Contains(t, body, "dn: "+ada)
	}
	for _, host := range []string{"localhost:9999", "localhost", "127.0.0.1.evil.example:8389", ""} {
		code, _ := a.do("GET", host, "/status")
		require.Equal(t, http.StatusMisdirectedRequest, code, "host %q", host)
	}
}

// CSRF: a page on another origin can POST a form at the admin actions;
// the browser says where it comes from (Origin, Sec-Fetch-Site) and a
// form's content type gives it away. The CLI's bodiless POST still works.
func TestCrossOriginAdminActionsAreRefused(t *testing.T) {
	a := newAdmin(t, mirror.HTTPConfig{Addr: listenAddr})
	host := listenAddr
	for _, action := range []string{"stop", "reload", "approve-deletions", "start"} {
		path := "/links/people/" + action
		code, _ := a.do("POST", host, path, "Origin", "http://evil.example")
		require.Equal(t, http.StatusForbidden, code, "%s with a foreign Origin", action)
		code, _ = a.do("POST", host, path, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, code, "%s cross-site", action)
		for _, ct := range []string{"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8"} {
			code, _ = a.do("POST", host, path, "Content-Type", ct)
			require.Equal(t, http.StatusUnsupportedMediaType, code, "%s as %s", action, ct)
		}
	}
	require.NotContains(t, a.log.String(), "admin action", "a refused request is no action")
	code, body := a.do("POST", host, "/links/people/reload") // as replink approve-deletions sends
	require.Equal(t, http.StatusOK, code, body)
	code, body = a.do("POST", host, "/links/people/reload", "Origin", "http://"+listenAddr, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, a.log.String(), "action=reload link=people remote=127.0.0.1:50000 auth=none")
}

// With a token, every endpoint wants it, compared whole.
func TestTokenIsRequiredEverywhere(t *testing.T) {
	const token = "k9-Tq2-very-long-admin-token"
	a := newAdmin(t, mirror.HTTPConfig{Addr: listenAddr, Token: token})
	for _, req := range [][2]string{{"GET", "/status"}, {"GET", "/healthz"}, {"GET", "/metrics"}, {"GET", "/links/people/ldif"}, {"POST", "/links/people/reload"}} {
		for _, auth := range []string{"", "Bearer", "Bearer " + token[:len(token)-1], "Bearer " + token + "x", "Basic " + token} {
			code, _ := a.do(req[0], listenAddr, req[1], "Authorization", auth)
			require.Equal(t, http.StatusUnauthorized, code, "%s %s with %q", req[0], req[1], auth)
		}
		code, body := a.do(req[0], listenAddr, req[1], "Authorization", "Bearer "+token)
		require.Equal(t, http.StatusOK, code, "%s %s: %s", req[0], req[1], body)
	}
	require.Contains(t, a.log.String(), "action=reload link=people remote=127.0.0.1:50000 auth=token")
	// Authenticated, the Host no longer matters: a rebinding page has no token.
	code, _ := a.do("GET", "replica.example.com:8389", "/status", "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusOK, code)
}

// A listener beyond loopback is refused without a token.
func TestExternalAddressNeedsAToken(t *testing.T) {
	_, err := mirror.New(mirror.Config{HTTP: mirror.HTTPConfig{Addr: "0.0.0.0:8389"}})
	require.ErrorIs(t, err, mirror.ErrNoToken)
	m, err := mirror.New(mirror.Config{HTTP: mirror.HTTPConfig{Addr: "0.0.0.0:8389", Token: "t"}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, m.Close())
}

// The copy comes without its secrets unless the token asks for them.
func TestLDIFIsRedactedByDefault(t *testing.T) {
	a := newAdmin(t, mirror.HTTPConfig{Addr: listenAddr})
	code, body := a.do("GET", listenAddr, "/links/people/ldif")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, adaHash)
	require.Contains(t, body, "userPassword: "+mirror.RedactedValue)
	require.Contains(t, body, "mail: ada@example.com")
	code, body = a.do("GET", listenAddr, "/links/people/ldif?secrets=1")
	require.Equal(t, http.StatusForbidden, code, "no token configured: no secrets")
	require.NotContains(t, body, adaHash)

	const token = "tok"
	a = newAdmin(t, mirror.HTTPConfig{Addr: listenAddr, Token: token, Redact: []string{"mail", "userPassword"}})
	auth := []string{"Authorization", "Bearer " + token}
	_, body = a.do("GET", listenAddr, "/links/people/ldif", auth...)
	require.NotContains(t, body, adaHash)
	require.NotContains(t, body, "ada@example.com", "the operator's own list")
	code, body = a.do("GET", listenAddr, "/links/people/ldif?secrets=1", auth...)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "userPassword: "+adaHash)
	require.True(t, strings.Contains(body, "mail: ada@example.com"))
}
