package dstest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

const sample = `dn: cn=config
nsslapd-port: 389
nsslapd-listenhost: 0.0.0.0

dn: cn=Retro Changelog Plugin,cn=plugins,cn=config
cn: Retro Changelog Plugin
nsslapd-pluginEnabled: off
nsslapd-plugin-depends-on-named: Class of Service
 , folded on
nsslapd-pluginprecedence: 25
`

func TestDSESet(t *testing.T) {
	for _, tc := range []struct {
		name, dn, attr, value, want string
	}{
		{"replace a value", "cn=config", "nsslapd-listenhost", "127.0.0.1",
			"dn: cn=config\nnsslapd-port: 389\nnsslapd-listenhost: 127.0.0.1\n"},
		{"add a missing attribute", "cn=config", "nsslapd-ldapilisten", "off",
			"dn: cn=config\nnsslapd-port: 389\nnsslapd-listenhost: 0.0.0.0\nnsslapd-ldapilisten: off\n"},
		{"dn and attribute match without case", "CN=retro changelog plugin,cn=plugins,cn=config", "NSSLAPD-PLUGINENABLED", "on",
			"nsslapd-plugin-depends-on-named: Class of Service\n , folded on\nnsslapd-pluginprecedence: 25\nNSSLAPD-PLUGINENABLED: on\n"},
		{"folded lines go with their value", "cn=Retro Changelog Plugin,cn=plugins,cn=config", "nsslapd-plugin-depends-on-named", "x",
			"nsslapd-pluginEnabled: off\nnsslapd-pluginprecedence: 25\nnsslapd-plugin-depends-on-named: x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := parseDSE(sample)
			require.NoError(t, d.set(tc.dn, tc.attr, tc.value))
			require.Contains(t, d.String(), tc.want)
		})
	}
	require.Error(t, parseDSE(sample).set("cn=nowhere", "a", "b"))
}
