package sambatest

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestLifecycle starts a DC, binds, writes, and restarts it every way the
// link tests will: the data survives, and a paused DC answers nothing.
func TestLifecycle(t *testing.T) {
	s := Start(t)
	t.Logf("template provisioned in %v; this server's copy in %v; ready %v after launch",
		TemplateProvisioned(), s.Provisioned, s.Ready)
	dn, err := s.CreateUser("alice", "Alice-Pw1!")
	if err != nil {
		t.Fatal(err)
	}
	// The new user can bind with a simple bind over plain LDAP.
	c, err := s.Bind(dn, "Alice-Pw1!")
	if err != nil {
		t.Fatalf("user bind: %v", err)
	}
	c.Close()
	g, err := s.GUID(dn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ModifyAttr(dn, "description", "before restart"); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	s.Stop()
	t.Logf("SIGTERM stop took %v", time.Since(t0))
	s.Launch()
	t.Logf("relaunch ready in %v", s.Ready)
	snap, err := s.Snapshot(context.Background(), UsersDN, []string{"description"})
	if err != nil {
		t.Fatal(err)
	}
	if got := snap[g]["description"]; len(got) != 1 || got[0] != "before restart" {
		t.Fatalf("after restart alice's description is %q", got)
	}

	s.Kill()
	s.Launch()
	if _, err := s.GUID(dn); err != nil {
		t.Fatalf("after SIGKILL and launch: %v", err)
	}

	s.Pause()
	c, err = quickBind(s, time.Second)
	if err == nil {
		c.Close()
		s.Resume()
		t.Fatal("a paused DC answered a bind")
	}
	s.Resume()
	c, err = s.Admin()
	if err != nil {
		t.Fatalf("resumed DC: %v", err)
	}
	c.Close()

	// The host vanishes (link first, then the process) and returns at the
	// same address on the same data.
	s.Netns.Vanish(s)
	if c, err := quickBind(s, time.Second); err == nil {
		c.Close()
		t.Fatal("a vanished DC answered a bind")
	}
	s.Netns.Return(s)
	if _, err := s.GUID(dn); err != nil {
		t.Fatalf("after vanish and return: %v", err)
	}
}

// TestCopiesAreOneDC records that servers copied from the template are
// the same DC: the same objectGUIDs, so one mirror's keys fit both.
func TestCopiesAreOneDC(t *testing.T) {
	a, b := Start(t), Start(t)
	ga, err := a.GUID(AdminDN)
	if err != nil {
		t.Fatal(err)
	}
	gb, err := b.GUID(AdminDN)
	if err != nil {
		t.Fatal(err)
	}
	if ga != gb {
		t.Fatalf("copies of the template differ: %v vs %v", ga, gb)
	}
	if a.URL() == b.URL() {
		t.Fatalf("two DCs at one address %s", a.URL())
	}
	c, err := ldap.DialURL(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// quickBind binds as the administrator, giving up after d.
func quickBind(s *Server, d time.Duration) (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: d}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(d)
	if err := c.Bind(AdminDN, AdminPW); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// TestLoadUsers loads users offline across a transaction boundary (ldb's
// batch mode, transactions of 1,000) and reads them back from the running
// DC: each is there with its attributes and a SID of its own, as an LDAP
// add would have given it.
func TestLoadUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("real Samba: not in -short")
	}
	s := Start(t)
	const n = 1003
	if err := s.LoadUsers(n); err != nil {
		t.Fatal(err)
	}
	c, err := s.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(UsersDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=user)(description=bench user *))", []string{"sAMAccountName", "objectSid", "mail"}, nil), 500)
	if err != nil {
		t.Fatal(err)
	}
	require.Len(t, res.Entries, n)
	sids := map[string]bool{}
	for _, e := range res.Entries {
		name := e.GetAttributeValue("sAMAccountName")
		require.Equal(t, LoadedUserDN(mustAtoi(t, name[1:])), e.DN)
		require.Equal(t, name+"@replink.test", e.GetAttributeValue("mail"))
		sid := string(e.GetRawAttributeValue("objectSid"))
		require.NotEmpty(t, sid, "%s has no SID", e.DN)
		sids[sid] = true
	}
	require.Len(t, sids, n, "SIDs are not distinct")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	i, err := strconv.Atoi(s)
	require.NoError(t, err)
	return i
}
