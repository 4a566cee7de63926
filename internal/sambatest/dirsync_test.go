package sambatest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
)

// The DirSync facts replink's Active Directory transport builds on, each
// an assertion against the Samba AD DC the packages install: a Samba that
// behaves otherwise fails here first. The API used is go-ldap's, directly.

type round struct {
	entries []*ldap.Entry
	cookie  []byte
	more    bool
}

// dirSync runs one DirSync round under BaseDN with a fresh request (a
// reused request keeps its old control, and go-ldap then ignores the
// cookie argument).
func dirSync(c *ldap.Conn, flags int64, cookie []byte, attrs ...string) (round, error) {
	if len(attrs) == 0 {
		attrs = []string{"*"}
	}
	req := ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", attrs, nil)
	res, err := c.DirSync(req, flags, 0, cookie)
	if err != nil {
		return round{}, err
	}
	r := round{entries: res.Entries}
	if ctl, ok := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync); ok {
		r.cookie, r.more = ctl.Cookie, ctl.Flags != 0
	}
	return r, nil
}

func (r round) byGUID(t *testing.T) map[uuid.UUID]*ldap.Entry {
	t.Helper()
	m := map[uuid.UUID]*ldap.Entry{}
	for _, e := range r.entries {
		g, err := ldapadapter.ObjectGUID(e.GetRawAttributeValue("objectGUID"))
		if err != nil {
			t.Fatalf("%s: objectGUID: %v", e.DN, err)
		}
		m[g] = e
	}
	return m
}

func attrNames(e *ldap.Entry) []string {
	var n []string
	for _, a := range e.Attributes {
		n = append(n, a.Name)
	}
	sort.Strings(n)
	return n
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// neverReturned are attributes an administrator's plain search returns on
// a user that DirSync never returns: the RDN attribute and the DN, the
// DC's own bookkeeping (USNs, whenChanged) and the attributes each DC
// keeps for itself (logon counts and times, bad password counts).
var neverReturned = []string{"cn", "distinguishedName", "whenChanged", "uSNChanged", "uSNCreated",
	"badPwdCount", "badPasswordTime", "lastLogon", "lastLogoff", "logonCount"}

func TestDirSyncFacts(t *testing.T) {
	s := Start(t)
	c := must[*ldap.Conn](t)(s.Admin())
	defer c.Close()
	str := must[string](t)

	bob := str(s.CreateUser("bob", "Bob-Pw1!"))
	carol := str(s.CreateUser("carol", "Carol-Pw1!"))
	staff := str(s.CreateGroup("staff"))
	bobGUID := must[uuid.UUID](t)(s.GUID(bob))
	carolGUID := must[uuid.UUID](t)(s.GUID(carol))

	var cookie []byte
	t.Run("initial round returns every object", func(t *testing.T) {
		r := must[round](t)(dirSync(c, 0, nil))
		got := r.byGUID(t)
		want := must[map[uuid.UUID]Entry](t)(s.Snapshot(t.Context(), BaseDN, []string{"isDeleted"}))
		for g := range want {
			if got[g] == nil {
				t.Errorf("live object %v missing from the initial round", g)
			}
		}
		// Beyond the live objects only tombstones (CN=Deleted Objects)
		// and the head of the configuration partition, which a subtree
		// search of the domain does not return.
		for g, e := range got {
			if want[g] == nil && !strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") &&
				!strings.EqualFold(e.DN, "CN=Configuration,"+BaseDN) {
				t.Errorf("initial round has %s, neither live nor deleted", e.DN)
			}
		}
		if got[bobGUID] == nil || got[bobGUID].GetAttributeValue("sAMAccountName") != "bob" {
			t.Errorf("bob not whole in the initial round: %v", got[bobGUID])
		}
		if len(r.cookie) == 0 || r.more {
			t.Errorf("cookie %d bytes, more data %v: want a cookie and no more data", len(r.cookie), r.more)
		}
		t.Logf("initial round: %d objects (%d live), cookie %d bytes", len(got), len(want), len(r.cookie))
		cookie = r.cookie
	})

	// What an administrator reads of a user, and what DirSync's initial
	// round gives of the same user: the difference is what a DirSync copy
	// never holds.
	t.Run("attributes DirSync never returns", func(t *testing.T) {
		r := must[round](t)(dirSync(c, 0, nil))
		got := r.byGUID(t)[carolGUID]
		if got == nil {
			t.Fatal("carol not in the initial round")
		}
		res := must[*ldap.SearchResult](t)(c.Search(ldap.NewSearchRequest(carol, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"*", "+"}, nil)))
		names := func(e *ldap.Entry) map[string]bool {
			m := map[string]bool{}
			for _, a := range e.Attributes {
				m[strings.ToLower(a.Name)] = true
			}
			return m
		}
		plain, ds := names(res.Entries[0]), names(got)
		var missing, extra []string
		for name := range plain {
			if !ds[name] {
				missing = append(missing, name)
			}
		}
		for name := range ds {
			if !plain[name] {
				extra = append(extra, name)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		t.Logf("of the %d attributes an administrator reads on a user, DirSync's round lacks %v and adds %v", len(plain), missing, extra)
		for _, name := range neverReturned {
			if !slices.Contains(missing, strings.ToLower(name)) {
				t.Errorf("DirSync returned %s", name)
			}
		}
		for _, name := range []string{"ntsecuritydescriptor", "parentguid"} {
			if !slices.Contains(extra, name) {
				t.Errorf("DirSync did not add %s", name)
			}
		}
	})

	t.Run("a round without changes is empty", func(t *testing.T) {
		r := must[round](t)(dirSync(c, 0, cookie))
		if len(r.entries) != 0 {
			t.Fatalf("%d entries with no change: %v", len(r.entries), r.entries[0].DN)
		}
		cookie = r.cookie
	})

	t.Run("a change returns only changed attributes plus objectGUID and instanceType", func(t *testing.T) {
		if err := s.ModifyAttr(bob, "description", "changed"); err != nil {
			t.Fatal(err)
		}
		r := must[round](t)(dirSync(c, 0, cookie))
		if len(r.entries) != 1 {
			t.Fatalf("%d entries for one change", len(r.entries))
		}
		e := r.entries[0]
		if !strings.EqualFold(e.DN, bob) {
			t.Errorf("DN %s, want %s", e.DN, bob)
		}
		if got, want := attrNames(e), []string{"description", "instanceType", "objectGUID"}; !slices.Equal(got, want) {
			t.Errorf("attributes %v, want %v", got, want)
		}
		if e.GetAttributeValue("description") != "changed" {
			t.Errorf("description %q", e.GetAttributeValue("description"))
		}
		cookie = r.cookie
	})

	t.Run("a cleared attribute comes back with no values", func(t *testing.T) {
		if err := s.ModifyAttr(bob, "description"); err != nil {
			t.Fatal(err)
		}
		r := must[round](t)(dirSync(c, 0, cookie))
		if len(r.entries) != 1 {
			t.Fatalf("%d entries for one change", len(r.entries))
		}
		var found bool
		for _, a := range r.entries[0].Attributes {
			if strings.EqualFold(a.Name, "description") {
				found = true
				if len(a.Values) != 0 {
					t.Errorf("cleared description has values %q", a.Values)
				}
			}
		}
		if !found {
			t.Errorf("cleared description absent: %v", attrNames(r.entries[0]))
		}
		cookie = r.cookie
	})

	t.Run("incremental values: member;range=1-1 added, member;range=0-0 removed", func(t *testing.T) {
		const flags = ldap.DirSyncIncrementalValues
		r := must[round](t)(dirSync(c, flags, cookie))
		cookie = r.cookie
		if err := s.AddToGroup(staff, bob); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToGroup(staff, carol); err != nil {
			t.Fatal(err)
		}
		r = must[round](t)(dirSync(c, flags, cookie))
		cookie = r.cookie
		member := func(r round) map[string][]string {
			m := map[string][]string{}
			for _, e := range r.entries {
				if !strings.EqualFold(e.DN, staff) {
					continue
				}
				for _, a := range e.Attributes {
					if strings.HasPrefix(strings.ToLower(a.Name), "member") {
						m[strings.ToLower(a.Name)] = a.Values
					}
				}
			}
			return m
		}
		if got := member(r)["member;range=1-1"]; len(got) != 2 {
			t.Errorf("after adding two members: %v", member(r))
		}
		if err := s.RemoveFromGroup(staff, bob); err != nil {
			t.Fatal(err)
		}
		r = must[round](t)(dirSync(c, flags, cookie))
		cookie = r.cookie
		got := member(r)
		if len(got) != 1 || len(got["member;range=0-0"]) != 1 || !strings.EqualFold(got["member;range=0-0"][0], bob) {
			t.Errorf("after removing bob: %v", got)
		}
		// Without the flag the whole attribute comes back.
		if err := s.AddToGroup(staff, bob); err != nil {
			t.Fatal(err)
		}
		r = must[round](t)(dirSync(c, 0, cookie))
		cookie = r.cookie
		if got := member(r); len(got["member"]) != 2 {
			t.Errorf("without the flag: %v", got)
		}
	})

	t.Run("a deleted object comes back under CN=Deleted Objects with isDeleted TRUE", func(t *testing.T) {
		if err := s.DeleteUser(carol); err != nil {
			t.Fatal(err)
		}
		r := must[round](t)(dirSync(c, 0, cookie))
		cookie = r.cookie
		e := r.byGUID(t)[carolGUID]
		if e == nil {
			t.Fatalf("carol's deletion not in the round: %d entries", len(r.entries))
		}
		if !strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") {
			t.Errorf("isDeleted %q", e.GetAttributeValue("isDeleted"))
		}
		if !strings.Contains(e.DN, `\0ADEL:`) || !strings.Contains(strings.ToLower(e.DN), "cn=deleted objects,"+strings.ToLower(BaseDN)) {
			t.Errorf("deleted DN %q", e.DN)
		}
		t.Logf("tombstone: %s, attributes %v", e.DN, attrNames(e))
		// Secrets come back as names without values.
		for _, a := range []string{"unicodePwd", "supplementalCredentials", "ntPwdHistory"} {
			if v := e.GetRawAttributeValues(a); len(v) != 0 {
				t.Errorf("tombstone carries %d values of %s", len(v), a)
			}
		}
	})

	t.Run("rename and move keep the objectGUID", func(t *testing.T) {
		ou := str(s.CreateOU("people"))
		renamed := str(s.Rename(bob, "CN=robert"))
		moved := str(s.Move(renamed, ou))
		r := must[round](t)(dirSync(c, 0, cookie))
		cookie = r.cookie
		e := r.byGUID(t)[bobGUID]
		if e == nil || !strings.EqualFold(e.DN, moved) {
			t.Fatalf("bob after rename and move: %v, want DN %s", e, moved)
		}
		t.Logf("rename+move: attributes %v", attrNames(e))
	})

	t.Run("a garbage cookie is refused", func(t *testing.T) {
		_, err := dirSync(c, 0, []byte("not a cookie from this DC"))
		var le *ldap.Error
		if !errors.As(err, &le) {
			t.Fatalf("garbage cookie: %v", err)
		}
		t.Logf("garbage cookie: %v", err)
		if le.ResultCode != garbageCookieCode {
			t.Errorf("garbage cookie: result %d, want %d", le.ResultCode, garbageCookieCode)
		}
	})

	t.Run("rights: 50 without Replicating Directory Changes, object security sees what it may read", func(t *testing.T) {
		dn := str(s.CreateUser("reader", "Reader-Pw1!"))
		rc := must[*ldap.Conn](t)(s.Bind(dn, "Reader-Pw1!"))
		defer rc.Close()
		_, err := dirSync(rc, 0, nil)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
			t.Errorf("without the right: %v, want result 50", err)
		}
		r := must[round](t)(dirSync(rc, ldap.DirSyncObjectSecurity, nil))
		all := must[round](t)(dirSync(c, 0, nil))
		if len(r.entries) == 0 || len(r.entries) >= len(all.entries) {
			t.Errorf("object security: %d objects, the administrator %d", len(r.entries), len(all.entries))
		}
		// Nothing the reader cannot search for itself.
		res := must[*ldap.SearchResult](t)(rc.SearchWithPaging(ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree,
			ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"objectGUID"}, nil), 500))
		// By DN: the reader cannot read objectGUID on every object.
		visible := map[string]bool{}
		for _, e := range res.Entries {
			visible[strings.ToLower(e.DN)] = true
		}
		for _, e := range r.entries {
			if !visible[strings.ToLower(e.DN)] && !strings.EqualFold(e.DN, "CN=Configuration,"+BaseDN) {
				t.Errorf("object security returned %s, which the reader cannot search", e.DN)
			}
		}
		t.Logf("object security: %d objects, reader's own search %d, administrator's DirSync %d",
			len(r.entries), len(visible), len(all.entries))

		if err := s.GrantGetChanges(dn); err != nil {
			t.Fatal(err)
		}
		withRight := must[round](t)(dirSync(rc, 0, nil))
		// Samba still filters by what the caller may read: the right
		// lifts the 50, not the ACLs (AD returns everything). Only the
		// administrators see every object.
		if len(withRight.entries) != len(r.entries) {
			t.Errorf("with the right: %d objects, with object security %d", len(withRight.entries), len(r.entries))
		}
		mine := withRight.byGUID(t)
		var hidden []string
		for g, e := range all.byGUID(t) {
			if mine[g] == nil {
				hidden = append(hidden, e.DN)
			}
		}
		sort.Strings(hidden)
		t.Logf("with the right: %d objects; hidden from the reader: %d, e.g. %q", len(withRight.entries), len(hidden), hidden[:min(len(hidden), 8)])

		// Tombstones are among what the reader cannot read: with the
		// right (and with object security) a delete never reaches it.
		// Only an administrator's DirSync learns of deletions.
		for i, flags := range []int64{0, ldap.DirSyncObjectSecurity} {
			gone := str(s.CreateUser(fmt.Sprint("gone", i), "Gone-Pw1!"))
			goneGUID := must[uuid.UUID](t)(s.GUID(gone))
			before := must[round](t)(dirSync(rc, flags, nil))
			if before.byGUID(t)[goneGUID] == nil {
				t.Fatalf("flags %#x: the reader does not see the new user", flags)
			}
			if err := s.DeleteUser(gone); err != nil {
				t.Fatal(err)
			}
			after := must[round](t)(dirSync(rc, flags, before.cookie))
			if e := after.byGUID(t)[goneGUID]; (e != nil) != readerSeesDeletes {
				t.Errorf("flags %#x: delete reported to the reader: %v, want %v", flags, e != nil, readerSeesDeletes)
			}
		}
	})

	t.Run("change notification wakes on a modify", func(t *testing.T) {
		nc := must[*ldap.Conn](t)(s.Admin())
		defer nc.Close()
		req := ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"objectGUID"},
			[]ldap.Control{ldap.NewControlString(ldap.ControlTypeMicrosoftNotification, true, "")})
		ctx, cancel := contextWithTimeout(t, 30*time.Second)
		defer cancel()
		resp := nc.SearchAsync(ctx, req, 16)
		notified := make(chan uuid.UUID, 16)
		go func() {
			defer close(notified)
			for resp.Next() {
				if e := resp.Entry(); e != nil {
					g, _ := ldapadapter.ObjectGUID(e.GetRawAttributeValue("objectGUID"))
					notified <- g
				}
			}
		}()
		// Nothing comes before a change: no initial content.
		select {
		case g, ok := <-notified:
			t.Fatalf("notification before any change: %v (open %v, err %v)", g, ok, resp.Err())
		case <-time.After(500 * time.Millisecond):
		}
		var lat []time.Duration
		for i := range 5 {
			t0 := time.Now()
			if err := s.ModifyAttr(AdminDN, "description", fmt.Sprint("note ", i)); err != nil {
				t.Fatal(err)
			}
			select {
			case g, ok := <-notified:
				if !ok {
					t.Fatalf("notification search ended: %v", resp.Err())
				}
				lat = append(lat, time.Since(t0))
				if g != must[uuid.UUID](t)(s.GUID(AdminDN)) {
					t.Errorf("notified %v, not the modified object", g)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no notification 10s after a modify (round %d)", i)
			}
		}
		t.Logf("notification latency after a modify: %v", lat)

		// A delete: Samba reports it, or not; record which.
		victim := str(s.CreateUser("victim", "Victim-Pw1!"))
		drain(notified, 2*time.Second) // the add's notifications
		if err := s.DeleteUser(victim); err != nil {
			t.Fatal(err)
		}
		got := drain(notified, 3*time.Second)
		t.Logf("notifications within 3s of a delete: %d", len(got))
		if (len(got) > 0) != notifiesDelete {
			t.Errorf("delete notified: %v, want %v", len(got) > 0, notifiesDelete)
		}
	})
}

// drain collects what arrives on ch within d.
func drain(ch <-chan uuid.UUID, d time.Duration) []uuid.UUID {
	var got []uuid.UUID
	deadline := time.After(d)
	for {
		select {
		case g, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, g)
		case <-deadline:
			return got
		}
	}
}

// Measured on Samba 4.17.
const (
	// A cookie this DC cannot unmarshal: unavailableCriticalExtension.
	garbageCookieCode = ldap.LDAPResultUnavailableCriticalExtension
	// Samba re-runs the notification search on a change and finds no
	// deleted object: a delete wakes nobody.
	notifiesDelete = false
	// A non-administrator cannot read tombstones, right or not: its
	// DirSync rounds never report a delete.
	readerSeesDeletes = false
	// Notification searches one connection may hold (AD documents 5);
	// the next is refused with adminLimitExceeded (11).
	notificationLimit = 6
)

// TestForeignCookie presents one DC's cookie to another DC of the same
// realm (provisioned apart, so another invocationId): what the link gets
// when a name now points at another DC.
func TestForeignCookie(t *testing.T) {
	a, b := Start(t), Start(t, WithFreshDomain)
	t.Logf("fresh provision took %v", b.Provisioned)
	ca := must[*ldap.Conn](t)(a.Admin())
	defer ca.Close()
	cb := must[*ldap.Conn](t)(b.Admin())
	defer cb.Close()
	ra := must[round](t)(dirSync(ca, 0, nil))
	all := must[round](t)(dirSync(cb, 0, nil))
	r, err := dirSync(cb, 0, ra.cookie)
	t.Logf("foreign cookie: %d entries (a full round has %d), err %v", len(r.entries), len(all.entries), err)
	// Samba takes a cookie from another DC without an error and answers
	// with a full round: the link cannot tell from the result code that
	// it must prune what the new content no longer names.
	if err != nil {
		t.Fatalf("foreign cookie refused: %v", err)
	}
	if len(r.entries) != len(all.entries) {
		t.Fatalf("foreign cookie: %d entries, a full round has %d", len(r.entries), len(all.entries))
	}
}

// TestNotificationLimit opens notification searches on one connection
// until the DC refuses one.
func TestNotificationLimit(t *testing.T) {
	s := Start(t)
	c := must[*ldap.Conn](t)(s.Admin())
	defer c.Close()
	ctx, cancel := contextWithTimeout(t, 20*time.Second)
	defer cancel()
	var open int
	var refused error
	for range 8 {
		req := ldap.NewSearchRequest(BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"objectGUID"},
			[]ldap.Control{ldap.NewControlString(ldap.ControlTypeMicrosoftNotification, true, "")})
		resp := c.SearchAsync(ctx, req, 4)
		done := make(chan bool, 1)
		go func() { done <- resp.Next() }()
		select {
		case <-done:
			refused = resp.Err()
		case <-time.After(time.Second): // still waiting for changes: open
			open++
			continue
		}
		break
	}
	t.Logf("notification searches open on one connection: %d, then %v", open, refused)
	if open != notificationLimit {
		t.Errorf("%d notification searches open, want %d", open, notificationLimit)
	}
	if !ldap.IsErrorWithCode(refused, ldap.LDAPResultAdminLimitExceeded) {
		t.Errorf("the search past the limit: %v, want result 11", refused)
	}
}
