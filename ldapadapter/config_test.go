package ldapadapter_test

import (
	"testing"

	"github.com/stretchr/testify/require"

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
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			edit(&c)
			_, err := ldapadapter.New(c)
			require.ErrorIs(t, err, ldapadapter.ErrInvalidConfig)
		})
	}
}
