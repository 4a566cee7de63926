package ldapadapter_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

func TestConfigErrors(t *testing.T) {
	ok := ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "dc=t", Handler: ldapadapter.NewMemoryStore()}
	_, err := ldapadapter.New(ok)
	require.NoError(t, err)
	for name, edit := range map[string]func(*ldapadapter.Config){
		"empty URL":          func(c *ldapadapter.Config) { c.URL = "" },
		"http URL":           func(c *ldapadapter.Config) { c.URL = "http://x" },
		"StartTLS on ldaps":  func(c *ldapadapter.Config) { c.URL, c.StartTLS = "ldaps://x", true },
		"empty base":         func(c *ldapadapter.Config) { c.BaseDN = "" },
		"bad base":           func(c *ldapadapter.Config) { c.BaseDN = "not a dn" },
		"bad filter":         func(c *ldapadapter.Config) { c.Filter = "(unbalanced" },
		"no handler":         func(c *ldapadapter.Config) { c.Handler = nil },
		"bind without pw":    func(c *ldapadapter.Config) { c.BindDN = "cn=x,dc=t" },
		"unknown probe kind": func(c *ldapadapter.Config) { c.Probe = "ping" },
		"EXTERNAL in clear":  func(c *ldapadapter.Config) { c.SASLExternal = true },
		"unknown scope":      func(c *ldapadapter.Config) { c.Scope = 7 },
		"password in clear": func(c *ldapadapter.Config) {
			c.URL, c.BindDN, c.Password = "ldap://provider.example.com", "cn=r,dc=t", "pw"
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			edit(&c)
			_, err := ldapadapter.New(c)
			require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig)
		})
	}
}

// A password goes in clear only to loopback, or when told it may.
func TestCleartextPassword(t *testing.T) {
	base := ldapadapter.Config{BaseDN: "dc=t", Handler: ldapadapter.NewMemoryStore(), BindDN: "cn=r,dc=t", Password: "pw"}
	for _, tc := range []struct {
		url      string
		startTLS bool
		allow    bool
		ok       bool
	}{
		{"ldap://provider.example.com", false, false, false},
		{"ldap://10.1.2.3:389", false, false, false},
		{"ldap://provider.example.com", true, false, true},
		{"ldaps://provider.example.com", false, false, true},
		{"ldap://provider.example.com", false, true, true},
		{"ldap://127.0.0.1:389", false, false, true},
		{"ldap://[::1]:389", false, false, true},
		{"ldap://localhost", false, false, true},
	} {
		c := base
		c.URL, c.StartTLS, c.AllowCleartextPassword = tc.url, tc.startTLS, tc.allow
		_, err := ldapadapter.New(c)
		if tc.ok {
			require.NoError(t, err, tc.url)
			continue
		}
		require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig, tc.url)
		require.ErrorContains(t, err, "in clear")
		require.NotContains(t, err.Error(), "pw\"")
	}
}

// selfCookied is a Handler that keeps its own cookie.
type selfCookied struct {
	*ldapadapter.MemoryStore
	ldapadapter.MemoryCookieStore
}

// A Handler that keeps its own cookie is its link's CookieStore, and a
// second, separate store is refused: the two could disagree after a crash.
func TestHandlerKeepsItsOwnCookie(t *testing.T) {
	h := &selfCookied{MemoryStore: ldapadapter.NewMemoryStore()}
	c := ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "dc=t", Handler: h}
	_, err := ldapadapter.New(c)
	require.NoError(t, err)
	c.Cookies = h
	_, err = ldapadapter.New(c)
	require.NoError(t, err, "naming the handler itself is fine")
	c.Cookies = ldapadapter.FileCookieStore{Path: filepath.Join(t.TempDir(), "c")}
	_, err = ldapadapter.New(c)
	require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig)
	require.ErrorContains(t, err, "keeps its own cookie")
}

// A HandlerFunc cannot list its copy: paired with a durable cookie store,
// a restart would resume from the cookie and never delete what went away
// meanwhile, so the pairing is refused before anything connects.
func TestHandlerFuncRefusesDurableCookies(t *testing.T) {
	f := ldapadapter.HandlerFunc(func(context.Context, ldapadapter.Change) error { return nil })
	base := ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "dc=t", Handler: f}
	for _, tc := range []struct {
		name    string
		cookies ldapadapter.CookieStore
		ok      bool
	}{
		{"no cookie store", nil, true},
		{"in memory", &ldapadapter.MemoryCookieStore{}, true},
		{"cookie file", ldapadapter.FileCookieStore{Path: filepath.Join(t.TempDir(), "c")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			if tc.name == "cookie file" {
				m := c
				m.Handler, m.Cookies = ldapadapter.NewMemoryStore(), tc.cookies
				_, err := ldapadapter.New(m)
				require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig, "a memory copy with a durable cookie resumes on an empty copy")
			}
			c.Cookies = tc.cookies
			_, err := ldapadapter.New(c)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig)
			require.ErrorContains(t, err, "does not outlive the process")
		})
	}
}

// Known is per link by construction: a Consumer refuses to give two links
// the same Handler, since a reload on one would prune the other's entries.
func TestConsumerRefusesSharedHandler(t *testing.T) {
	store := ldapadapter.NewMemoryStore()
	cfg := func(name string, h ldapadapter.Handler) ldapadapter.LinkConfig {
		return ldapadapter.LinkConfig{Name: name, Machine: fsm.DefaultConfig(), LDAP: ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "dc=t", Handler: h}}
	}
	c := ldapadapter.NewConsumer()
	defer c.Shutdown()
	_, err := c.Add(cfg("a", store))
	require.NoError(t, err)
	_, err = c.Add(cfg("b", store))
	require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig)
	require.ErrorContains(t, err, `link "a"`)
	_, err = c.Add(cfg("b", ldapadapter.NewMemoryStore()))
	require.NoError(t, err)
	require.ErrorIs(t, c.Reconfigure(t.Context(), cfg("b", store)), ldapadapter.ErrInvalidConfig)
	require.NoError(t, c.Reconfigure(t.Context(), cfg("a", store)), "a link may keep its own handler")
	f := ldapadapter.HandlerFunc(func(context.Context, ldapadapter.Change) error { return nil })
	_, err = c.Add(cfg("c", f))
	require.NoError(t, err)
	_, err = c.Add(cfg("d", f))
	require.NoError(t, err, "a HandlerFunc is tracked per link")
}

// Every refusal is a *ConfigError naming the field at fault, and New
// reports all of them at once, so a caller configuring from a file can
// name each of its keys.
func TestConfigErrorsNameEveryField(t *testing.T) {
	_, err := ldapadapter.New(ldapadapter.Config{URL: "http://x", BaseDN: "not a dn", Filter: "(cn=", Probe: "ping", Handler: ldapadapter.NewMemoryStore()})
	require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ldapadapter.ConfigError
		require.ErrorAs(t, e, &ce)
		fields = append(fields, ce.Field)
	}
	require.Equal(t, []string{"URL", "BaseDN", "Filter", "Probe"}, fields)
}
