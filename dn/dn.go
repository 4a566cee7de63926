// Package dn compares and normalises LDAP distinguished names, so that a
// name respelled (spaces after commas, the case of attribute types, escapes)
// is still the same name wherever DNs are compared or used as keys.
package dn

import (
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Normalize returns the canonical form of s, as go-ldap's DN parser prints
// it (RFC 4514): attribute types lower-cased, no spaces around separators,
// values unescaped and re-escaped one way (non-ASCII bytes hex-escaped), the
// parts of a multi-valued RDN sorted. Value case is kept: without the schema
// a value's matching rule is unknown, and a case-exact naming attribute
// makes "uid=A" and "uid=a" two names.
func Normalize(s string) (string, error) {
	d, err := ldap.ParseDN(s)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// Equal says whether a and b name the same entry, as distinguishedNameMatch
// with case-insensitive values: the names compared this way (search bases)
// are made of case-ignore attributes (dc, ou, o, cn) in practice, and an
// entry's identity is its entryUUID, never its DN. If either does not parse,
// they are compared as lower-cased strings.
func Equal(a, b string) bool {
	da, errA := ldap.ParseDN(a)
	db, errB := ldap.ParseDN(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return da.EqualFold(db)
}
