package ldapadapter

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

func dsEntry(dn string, attrs ...string) *ldap.Entry {
	e := &ldap.Entry{DN: dn}
	for _, kv := range attrs {
		from := 0 // the value starts after the first "=" past any ";range=lo-hi"
		if i := strings.Index(kv, ";range="); i >= 0 {
			from = i + len(";range=")
		}
		j := from + strings.Index(kv[from:], "=")
		name, vals := kv[:j], kv[j+1:]
		a := &ldap.EntryAttribute{Name: name}
		if vals != "" {
			for _, v := range strings.Split(vals, "|") {
				a.Values, a.ByteValues = append(a.Values, v), append(a.ByteValues, []byte(v))
			}
		}
		e.Attributes = append(e.Attributes, a)
	}
	return e
}

func TestDirSyncMerge(t *testing.T) {
	old := dsEntry("CN=g,CN=Users,DC=x", "cn=g", "distinguishedName=CN=g,CN=Users,DC=x", "description=d",
		"member=CN=a|CN=b", "instanceType=4", "mail=m")
	t.Run("a new object comes whole and gets its names", func(t *testing.T) {
		e, mods, err := mergeDirSync(nil, dsEntry("CN=n,DC=x", "name=n", "unicodePwd="))
		require.NoError(t, err)
		require.Equal(t, []string{"n"}, e.GetAttributeValues("cn"))
		require.Equal(t, []string{"CN=n,DC=x"}, e.GetAttributeValues("distinguishedName"))
		require.Nil(t, attribute(e, "unicodePwd"), "a listed attribute without values holds nothing")
		require.NotEmpty(t, mods)
	})
	t.Run("changed attributes merge", func(t *testing.T) {
		e, mods, err := mergeDirSync(old, dsEntry(old.DN, "description=new", "mail=", "instanceType=4",
			"member;range=1-1=CN=c", "member;range=0-0=CN=a|CN=zz"))
		require.NoError(t, err)
		require.Equal(t, []string{"new"}, e.GetAttributeValues("description"))
		require.Nil(t, attribute(e, "mail"), "a cleared attribute is removed")
		require.ElementsMatch(t, []string{"CN=b", "CN=c"}, e.GetAttributeValues("member"))
		require.Equal(t, []Mod{
			{Op: ModReplace, Attr: "description", Values: [][]byte{[]byte("new")}},
			{Op: ModDelete, Attr: "mail"},
			{Op: ModAdd, Attr: "member", Values: [][]byte{[]byte("CN=c")}},
			{Op: ModDelete, Attr: "member", Values: [][]byte{[]byte("CN=a")}},
		}, mods, "instanceType unchanged, CN=zz never held: no mods")
		require.Equal(t, []string{"CN=a", "CN=b"}, old.GetAttributeValues("member"), "the stored entry is left alone")
	})
	t.Run("removing the last value removes the attribute", func(t *testing.T) {
		e, _, err := mergeDirSync(old, dsEntry(old.DN, "member;range=0-0=CN=a|CN=b"))
		require.NoError(t, err)
		require.Nil(t, attribute(e, "member"))
	})
	t.Run("adding to an attribute the entry lacks", func(t *testing.T) {
		e, _, err := mergeDirSync(dsEntry("CN=h,DC=x", "cn=h"), dsEntry("CN=h,DC=x", "member;range=1-1=CN=a"))
		require.NoError(t, err)
		require.Equal(t, []string{"CN=a"}, e.GetAttributeValues("member"))
	})
	t.Run("a rename renews the RDN value and distinguishedName", func(t *testing.T) {
		e, mods, err := mergeDirSync(old, dsEntry("CN=h,OU=o,DC=x", "name=h", "parentGUID=p"))
		require.NoError(t, err)
		require.Equal(t, "CN=h,OU=o,DC=x", e.DN)
		require.Equal(t, []string{"h"}, e.GetAttributeValues("cn"))
		require.Equal(t, []string{"CN=h,OU=o,DC=x"}, e.GetAttributeValues("distinguishedName"))
		require.Contains(t, mods, Mod{Op: ModReplace, Attr: "cn", Values: [][]byte{[]byte("h")}})
	})
	t.Run("other ranges are refused", func(t *testing.T) {
		_, _, err := mergeDirSync(old, dsEntry(old.DN, "member;range=0-1499=CN=a"))
		require.ErrorIs(t, err, ErrProtocol)
	})
}

func TestDirSyncRangeOption(t *testing.T) {
	for _, c := range []struct{ in, name, lo, hi string }{
		{"member;range=1-1", "member", "1", "1"},
		{"member;RANGE=0-0", "member", "0", "0"},
		{"member;range=0-*", "member", "0", "*"},
	} {
		name, lo, hi, ok := rangeOption(c.in)
		require.True(t, ok, c.in)
		require.Equal(t, []string{c.name, c.lo, c.hi}, []string{name, lo, hi})
	}
	_, _, _, ok := rangeOption("member")
	require.False(t, ok)
}

func TestDirSyncConfig(t *testing.T) {
	base := Config{URL: "ldap://127.0.0.1:389", BaseDN: "DC=x", Handler: NewMemoryStore(), Mode: ModeDirSync}
	d, err := base.withDefaults()
	require.NoError(t, err)
	require.Equal(t, []string{"*"}, dirSyncAttributes(d.Attributes))
	require.NotZero(t, d.DirSyncPoll)
	for name, mut := range map[string]func(*Config){
		"Mode":        func(c *Config) { c.Mode = "bogus" },
		"Attributes":  func(c *Config) { c.Attributes = []string{"cn"} },
		"Scope":       func(c *Config) { c.Scope = ldap.ScopeSingleLevel },
		"LogBase":     func(c *Config) { c.LogBase = "cn=accesslog" },
		"Handler":     func(c *Config) { c.Handler = HandlerFunc(nil) },
		"DirSyncPoll": func(c *Config) { c.DirSyncPoll = -1 },
	} {
		c := base
		mut(&c)
		_, err := c.withDefaults()
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, name)
		require.Equal(t, name, ce.Field)
	}
	c := base
	c.Attributes = []string{"cn", "mail"}
	_, err = c.withDefaults()
	require.NoError(t, err)
	require.Equal(t, []string{"cn", "mail", "objectGUID", "instanceType", "isDeleted"}, dirSyncAttributes(c.Attributes))
	c = base
	c.Mode, c.DirSyncPoll = "", 1
	_, err = c.withDefaults()
	require.Error(t, err, "DirSync settings without Mode dirsync")
	require.NotEqual(t, contentDigest(&base), contentDigest(&Config{BaseDN: "DC=x"}), "a DirSync cookie is bound to DirSync")
}

func TestDirSyncCookieDSA(t *testing.T) {
	cookie := make([]byte, 108)
	copy(cookie, "MSDS")
	want := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	copy(cookie[52:], want[:])
	id, ok := cookieDSA(cookie)
	require.True(t, ok)
	require.Equal(t, want, [16]byte(id))
	_, ok = cookieDSA([]byte("not a DirSync cookie"))
	require.False(t, ok, "an unknown format says nothing")
}

// objectGUID reads as AD prints it: the first three fields little-endian,
// the last two as sent (the daemon test checks the form against
// samba-tool's own output).
func TestObjectGUID(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"mixed endian", []byte{0x9d, 0x5d, 0xe9, 0x8b, 0x74, 0xa6, 0x33, 0x4a, 0x90, 0xdb, 0x38, 0x2f, 0x65, 0x0a, 0x20, 0x11}, "8be95d9d-a674-4a33-90db-382f650a2011"},
		{"counting", []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, "03020100-0504-0706-0809-0a0b0c0d0e0f"},
		{"short", []byte{1, 2, 3}, ""},
		{"long", make([]byte, 17), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ObjectGUID(tc.raw)
			if tc.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, g.String())
		})
	}
}
