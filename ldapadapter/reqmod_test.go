package ldapadapter

import (
	"errors"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

func vals(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, v := range s {
		out[i] = []byte(v)
	}
	return out
}

// reqMod as slapd 2.5 logs it: one value per modification value, values
// of one attribute and op grouped, a bare ':' between two modifications of
// the same attribute and op, value-less delete and replace.
func TestParseReqMod(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   [][]byte
		want []Mod
	}{
		{"add two values", vals("description:+ a", "description:+ b"),
			[]Mod{{ModAdd, "description", vals("a", "b")}}},
		{"ops in order", vals("mail:= x@y", "cn:- old", "uidNumber:# 5", "entryCSN:= 20240101000000.000000Z#000000#000#000000"),
			[]Mod{{ModReplace, "mail", vals("x@y")}, {ModDelete, "cn", vals("old")}, {ModIncrement, "uidNumber", vals("5")}, {ModReplace, "entryCSN", vals("20240101000000.000000Z#000000#000#000000")}}},
		{"value-less delete and replace", vals("mail:-", "seeAlso:="),
			[]Mod{{ModDelete, "mail", nil}, {ModReplace, "seeAlso", nil}}},
		{"bare colon splits", vals("description:+ a", ":", "description:+ b"),
			[]Mod{{ModAdd, "description", vals("a")}, {ModAdd, "description", vals("b")}}},
		{"two value-less deletes", vals("mail:-", "mail:-"),
			[]Mod{{ModDelete, "mail", nil}, {ModDelete, "mail", nil}}},
		{"empty value", vals("description:+ "), []Mod{{ModAdd, "description", vals("")}}},
		{"colons and newlines in a value", vals("description:+ a: b\n:c"), []Mod{{ModAdd, "description", vals("a: b\n:c")}}},
		{"binary", [][]byte{append([]byte("jpegPhoto:= "), 0, ':', 0xff, '\n')}, []Mod{{ModReplace, "jpegPhoto", [][]byte{{0, ':', 0xff, '\n'}}}}},
		{"options", vals("userCertificate;binary:+ x"), []Mod{{ModAdd, "userCertificate;binary", vals("x")}}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseReqMod(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseReqModRejects(t *testing.T) {
	for _, in := range [][]byte{
		[]byte("description"), []byte(":+ x"), []byte("desc ription:+ x"), []byte("description:"),
		[]byte("description:* x"), []byte("description:+x"), []byte("description:+"), []byte("uidNumber:#"),
	} {
		_, err := parseReqMod([][]byte{in})
		var re *ReqModError
		require.ErrorAs(t, err, &re, "%q", in)
		require.ErrorIs(t, err, ErrReqMod)
	}
	_, err := parseReqMod(vals("mail:- a", "mail:-"))
	require.ErrorIs(t, err, ErrReqMod, "a value-less delete inside one with values")
}

func entryOf(dn string, attrs ...string) *ldap.Entry {
	e := &ldap.Entry{DN: dn}
	for i := 0; i+1 < len(attrs); i += 2 {
		a := attribute(e, attrs[i])
		if a == nil {
			a = &ldap.EntryAttribute{Name: attrs[i]}
			e.Attributes = append(e.Attributes, a)
		}
		a.Values = append(a.Values, attrs[i+1])
		a.ByteValues = append(a.ByteValues, []byte(attrs[i+1]))
	}
	return e
}

func TestApplyMods(t *testing.T) {
	e := entryOf("uid=a,dc=t", "cn", "A", "description", "one", "uidNumber", "7", "mail", "a@t")
	mods, err := parseReqMod(vals("description:+ two", "description:- ONE", "uidNumber:# -2", "mail:-", "sn:= S", "cn:= B", "cn:= C"))
	require.NoError(t, err)
	require.NoError(t, applyMods(e, mods))
	require.Equal(t, map[string][]string{"cn": {"B", "C"}, "description": {"two"}, "uidNumber": {"5"}, "sn": {"S"}}, EntryAttributes(e))

	for _, bad := range [][]string{
		{"description:+ two"}, {"description:- three"}, {"title:-"}, {"title:# 1"}, {"cn:# 1"}, {"uidNumber:# x"},
	} {
		mods, err := parseReqMod(vals(bad...))
		require.NoError(t, err)
		var fb *FallbackError
		require.ErrorAs(t, applyMods(cloneEntry(e), mods), &fb, "%v", bad)
		require.Equal(t, FallbackValueConflict, fb.Cause)
	}
}

func TestRenamed(t *testing.T) {
	for _, tc := range []struct {
		r    logRecord
		want string
	}{
		{logRecord{dn: "uid=a,ou=p,dc=t", newRDN: "uid=b"}, "uid=b,ou=p,dc=t"},
		{logRecord{dn: `cn=a\,b,ou=p,dc=t`, newRDN: "cn=c"}, "cn=c,ou=p,dc=t"},
		{logRecord{dn: "uid=a,ou=p,dc=t", newRDN: "uid=a", newSup: "ou=q,dc=t", hasNewSup: true}, "uid=a,ou=q,dc=t"},
	} {
		got, err := renamed(&tc.r)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}

func TestMatchFilter(t *testing.T) {
	e := entryOf("uid=a,dc=t", "objectClass", "inetOrgPerson", "cn", "Ann", "entryCSN", "x")
	sel := newAttrSelector(nil)
	for _, tc := range []struct {
		filter string
		want   match
	}{
		{"(objectClass=inetOrgPerson)", matchYes},
		{"(cn=ann)", matchUnsure}, // equal ignoring case only: the rule decides
		{"(cn=Bob)", matchNo},
		{"(&(objectClass=inetOrgPerson)(!(cn=Bob)))", matchYes},
		{"(|(cn=Bob)(mail=*))", matchNo},
		{"(|(cn=Bob)(cn=A*))", matchUnsure},
		{"(entryCSN=x)", matchUnsure}, // not replicated
	} {
		f, err := ldap.CompileFilter(tc.filter)
		require.NoError(t, err)
		require.Equal(t, tc.want, matchFilter(f, e, sel), tc.filter)
	}
}

// FuzzParseReqMod: any bytes give modifications or a *ReqModError, never a
// panic, and what parses applies to an entry without panicking.
func FuzzParseReqMod(f *testing.F) {
	for _, seed := range []string{"description:+ a", "mail:-", ":", "uidNumber:# 5", "cn:= \x00\xff", "a:+ :\n"} {
		f.Add([]byte(seed), []byte("description:+ b"))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		mods, err := parseReqMod([][]byte{a, b})
		if err != nil {
			var re *ReqModError
			if !errors.As(err, &re) || !errors.Is(err, ErrReqMod) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		e := entryOf("uid=a,dc=t", "description", "a", "uidNumber", "1")
		if err := applyMods(e, mods); err != nil {
			var fb *FallbackError
			if !errors.As(err, &fb) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
		}
	})
}

func TestDiffEntries(t *testing.T) {
	old := entryOf("uid=a,dc=t", "cn", "A", "member", "x", "member", "y", "mail", "a@t")
	new := entryOf("uid=a,dc=t", "cn", "A", "member", "y", "member", "z", "sn", "S")
	require.Equal(t, []Mod{
		{ModDelete, "mail", nil},
		{ModDelete, "member", vals("x")},
		{ModAdd, "member", vals("z")},
		{ModAdd, "sn", vals("S")},
	}, diffEntries(old, new))
	require.Empty(t, diffEntries(old, old))
}
