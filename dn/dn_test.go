package dn_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/dn"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"already canonical", "uid=ada,ou=p,dc=t", "uid=ada,ou=p,dc=t"},
		{"spaces after commas", "uid=ada, ou=p,  dc=t", "uid=ada,ou=p,dc=t"},
		{"spaces around =", "uid = ada,ou= p", "uid=ada,ou=p"},
		{"case of types", "UID=ada,OU=p,Dc=t", "uid=ada,ou=p,dc=t"},
		{"value case kept", "uid=Ada,ou=P", "uid=Ada,ou=P"},
		{"escaped comma", `cn=Smith\, John,ou=p`, `cn=Smith\, John,ou=p`},
		{"hex-escaped comma", `cn=Smith\2C John,ou=p`, `cn=Smith\, John,ou=p`},
		{"escaped plus", `cn=a\+b,ou=p`, `cn=a\+b,ou=p`},
		{"multi-valued RDN sorted", "uid=ada+cn=Ada,ou=p", "cn=Ada+uid=ada,ou=p"},
		{"multi-valued RDN, spaces and case", "UID=ada + CN=Ada, ou=p", "cn=Ada+uid=ada,ou=p"},
		{"semicolon separator", "uid=ada;ou=p", "uid=ada,ou=p"},
		{"UTF-8 value", "cn=Zoë,ou=p", `cn=Zo\c3\ab,ou=p`},
		{"empty DN", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dn.Normalize(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNormalizeRefusesNonDN(t *testing.T) {
	for _, in := range []string{"not a dn", "uid=ada,ou", `cn=\zz`} {
		_, err := dn.Normalize(in)
		require.Error(t, err, in)
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		name  string
		a, b  string
		equal bool
	}{
		{"identical", "ou=p,dc=t", "ou=p,dc=t", true},
		{"space after comma", "ou=p, dc=t", "ou=p,dc=t", true},
		{"case of types", "OU=p,DC=t", "ou=p,dc=t", true},
		{"case of values", "ou=People,dc=T", "ou=people,dc=t", true},
		{"escaped value", `cn=a\,b,dc=t`, `cn=a\2cb,dc=t`, true},
		{"multi-valued RDN in any order", "cn=a+uid=b,dc=t", "uid=b + cn=a,dc=t", true},
		{"multi-valued RDN, other value", "cn=a+uid=b,dc=t", "cn=a+uid=c,dc=t", false},
		{"other value", "ou=p,dc=t", "ou=q,dc=t", false},
		{"other type", "ou=p,dc=t", "cn=p,dc=t", false},
		{"escaped comma is not a separator", `cn=a\,dc=t`, "cn=a,dc=t", false},
		{"ancestor is not equal", "dc=t", "ou=p,dc=t", false},
		{"unparsable, same but for case", "Not A DN", "not a dn", true},
		{"unparsable against a DN", "not a dn", "ou=p,dc=t", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.equal, dn.Equal(tc.a, tc.b))
			require.Equal(t, tc.equal, dn.Equal(tc.b, tc.a), "symmetric")
		})
	}
}
