package ldapadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// deltaRig is a provider with an accesslog and a delta-syncrepl link of
// ou=people into a real store.
type deltaRig struct {
	t     *testing.T
	srv   *slapdtest.Server
	admin *ldap.Conn
	db    *store.DB
	copy  *store.Link
	cfg   ldapadapter.LinkConfig
}

func newDeltaRig(t *testing.T, purge string) *deltaRig {
	t.Helper()
	if testing.Short() {
		t.Skip("real slapd: not in -short")
	}
	srv := slapdtest.Start(t, slapdtest.WithAccesslog(purge), slapdtest.WithPeople(5))
	admin, err := srv.Admin()
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close() })
	db, err := store.Open(t.TempDir()+"/r.db", nil)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	r := &deltaRig{t: t, srv: srv, admin: admin, db: db}
	r.open()
	for _, dn := range []string{"ou=elsewhere," + slapdtest.BaseDN, "ou=sub," + slapdtest.PeopleDN} {
		a := ldap.NewAddRequest(dn, nil)
		a.Attribute("objectClass", []string{"organizationalUnit"})
		a.Attribute("ou", []string{ldap.EscapeDN(dn[3 : len(dn)-len(slapdtest.BaseDN)-1])})
		require.NoError(t, admin.Add(a))
	}
	return r
}

// open (re)opens the link's copy in the store and its configuration.
func (r *deltaRig) open() {
	copy, err := r.db.Link("delta", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(r.t, err)
	r.copy = copy
	r.cfg = linkConfig("delta", r.srv.URL(), copy, nil)
	r.cfg.LDAP.BaseDN = slapdtest.PeopleDN
	r.cfg.LDAP.LogBase = slapdtest.LogDN
}

func (r *deltaRig) got() map[string]map[string][]string {
	got := map[string]map[string][]string{}
	require.NoError(r.t, r.db.Each("delta", func(e *ldap.Entry) error { got[e.DN] = ldapadapter.EntryAttributes(e); return nil }))
	return got
}

// inSync waits until the copy equals the provider's ou=people.
func (r *deltaRig) inSync(ctx context.Context) {
	r.t.Helper()
	var diff error
	require.Eventually(r.t, func() bool {
		want, err := r.srv.Snapshot(ctx, slapdtest.PeopleDN)
		diff = err
		if err == nil {
			diff = realtarget.DiffTrees(want, r.got())
		}
		return diff == nil
	}, 20*time.Second, 50*time.Millisecond, "copy differs: %v", func() error { return diff })
}

func (r *deltaRig) add(dn string, attrs map[string][]string) {
	r.t.Helper()
	a := ldap.NewAddRequest(dn, nil)
	for k, v := range attrs {
		a.Attribute(k, v)
	}
	require.NoError(r.t, r.admin.Add(a))
}

func (r *deltaRig) modify(dn string, f func(m *ldap.ModifyRequest)) {
	r.t.Helper()
	m := ldap.NewModifyRequest(dn, nil)
	f(m)
	require.NoError(r.t, r.admin.Modify(m))
}

func (r *deltaRig) rename(dn, rdn string, deleteOld bool, sup string) {
	r.t.Helper()
	require.NoError(r.t, r.admin.ModifyDN(ldap.NewModifyDNRequest(dn, rdn, deleteOld, sup)))
}

func person(uid string, extra map[string][]string) map[string][]string {
	m := map[string][]string{"objectClass": {"inetOrgPerson"}, "cn": {"C " + uid}, "sn": {"S"}, "uid": {uid}}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// binaryValue holds every byte value, ':' and newlines included.
func binaryValue(seed byte) []byte {
	b := make([]byte, 512)
	for i := range b {
		b[i] = byte(i) ^ seed
	}
	return b
}

// A delta link follows the log across every kind of write: add, modify
// (add, delete, replace, increment of values, a binary value), rename with
// and without deleteoldrdn, a move under a new superior, a move out of the
// base, a delete. The copy ends equal to the provider, without a fallback,
// and the binary value survives byte for byte.
func TestDeltaFollowsEveryKindOfWrite(t *testing.T) {
	r := newDeltaRig(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := startLink(t, ctx, r.cfg)
	r.inSync(ctx)
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())

	p := slapdtest.PeopleDN
	r.add("uid=d1,"+p, person("d1", map[string][]string{
		"objectClass": {"inetOrgPerson", "posixAccount"}, "uidNumber": {"1000"}, "gidNumber": {"100"},
		"homeDirectory": {"/home/d1"}, "description": {"first"}, "jpegPhoto": {string(binaryValue(0))},
	}))
	r.add("uid=d2,"+p, person("d2", nil))
	r.add("uid=d3,"+p, person("d3", nil))
	r.modify("uid=d1,"+p, func(m *ldap.ModifyRequest) {
		m.Add("description", []string{"second", "third"})
		m.Delete("description", []string{"first"})
		m.Replace("mail", []string{"d1@example.com", "one@example.com"})
		m.Increment("uidNumber", "5")
	})
	r.modify("uid=d1,"+p, func(m *ldap.ModifyRequest) {
		m.Replace("jpegPhoto", []string{string(binaryValue(0x5a))})
		m.Delete("mail", nil)
	})
	r.rename("uid=d1,"+p, "uid=d1b", true, "")
	r.rename("uid=d1b,"+p, "cn=D One", false, "")
	r.rename("cn=D One,"+p, "cn=D One", false, "ou=sub,"+p)
	r.rename("uid=d2,"+p, "uid=d2", false, "ou=elsewhere,"+slapdtest.BaseDN)
	require.NoError(t, r.admin.Del(ldap.NewDelRequest("uid=d3,"+p, nil)))
	require.NoError(t, r.srv.Write(3))
	r.inSync(ctx)

	var photo []byte
	require.NoError(t, r.db.Each("delta", func(e *ldap.Entry) error {
		if e.DN == "cn=D One,ou=sub,"+p {
			photo = e.GetRawAttributeValue("jpegPhoto")
		}
		return nil
	}))
	require.True(t, bytes.Equal(binaryValue(0x5a), photo), "binary value changed on its way")
	require.Empty(t, l.Fallbacks())
	require.Equal(t, ldapadapter.ProtocolLog, l.Protocol())
	require.Positive(t, l.ReceivedBytes())
	require.Equal(t, replink.Persisting, l.State())
	fmt.Fprintln(testWriter{t}, "received", l.ReceivedBytes(), "bytes")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }
