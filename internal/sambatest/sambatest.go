// Package sambatest starts throwaway Samba Active Directory domain
// controllers for tests: the Active Directory provider, reached over LDAP
// with the DirSync control instead of RFC 4533.
//
// Each DC runs as one foreground samba process inside a network namespace
// of its own (its LDAP ports are fixed at 389 and 636), on a domain
// provisioned into a temp dir. Provisioning takes about 13 s, so a test
// binary whose TestMain calls Main provisions once into a template and
// copies it for every server; without Main each server provisions its own.
package sambatest

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

const (
	// Realm and Domain name the provisioned domain.
	Realm  = "REPLINK.TEST"
	Domain = "REPLINK"
	// BaseDN is the domain's naming context, the base every DirSync
	// search must use.
	BaseDN = "DC=replink,DC=test"
	// UsersDN is the container CreateUser and CreateGroup write to.
	UsersDN = "CN=Users," + BaseDN
	// AdminDN and AdminPW are the domain administrator's.
	AdminDN = "CN=Administrator," + UsersDN
	AdminPW = "Replink-Adm1n!"
	// GetChangesRight is "Replicating Directory Changes", the control
	// access right DirSync needs without the object-security flag.
	GetChangesRight = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
)

// Binaries returns the paths of samba and samba-tool, or "" when missing.
func Binaries() (samba, tool string) {
	for _, p := range []string{"/usr/sbin/samba", "/usr/bin/samba"} {
		if _, err := os.Stat(p); err == nil {
			samba = p
			break
		}
	}
	if samba == "" {
		samba, _ = exec.LookPath("samba")
	}
	tool, _ = exec.LookPath("samba-tool")
	return samba, tool
}

// Require skips the test when the Samba AD DC packages are missing, or the
// test cannot create a network namespace, saying how to install them; under
// CI=true it fails instead, so a CI image without them cannot pass by
// skipping.
func Require(t slapdtest.TB) {
	t.Helper()
	msg := ""
	samba, tool := Binaries()
	if samba == "" || tool == "" {
		msg = "Samba AD DC not installed: scripts/install-deps.sh test (apt-get install --no-install-recommends samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind; the tests provision their own domain, no system service is used)"
	} else if _, err := os.Stat("/usr/share/samba/setup/provision.ldif"); err != nil {
		msg = "Samba AD provisioning data missing: apt-get install --no-install-recommends samba-ad-provision"
	} else if os.Geteuid() != 0 {
		msg = "a Samba DC listens on port 389 in a network namespace of its own: the test needs root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		msg = "a Samba DC runs in a network namespace: apt-get install iproute2"
	}
	if msg != "" {
		slapdtest.Missing(t, msg)
	}
}

// Server is one Samba AD DC: its data directory, its namespace and its
// process. It can be stopped, killed, paused and started again on the same
// data and address.
type Server struct {
	t   slapdtest.TB
	Dir string
	// Netns is the DC's host; Vanish and Return work on it as on slapd's.
	Netns *slapdtest.Netns
	// Fresh provisions a domain of its own instead of copying the
	// template (WithFreshDomain).
	Fresh bool
	// Provisioned is how long this server's domain took to provision, or
	// to copy from the template.
	Provisioned time.Duration
	// Ready is how long the last Launch took until an admin bind
	// succeeded.
	Ready time.Duration

	slapdtest.Proc
}

// Start provisions a domain (or copies the template) into a temp dir,
// creates a namespace for it and starts the DC there; it returns once the
// administrator can bind. The test's cleanup ends the process, deletes
// the namespace and removes the directory.
func Start(t slapdtest.TB, opts ...func(*Server)) *Server {
	t.Helper()
	Require(t)
	dir := slapdtest.ShortTempDir(t, "sambatest-")
	s := &Server{t: t, Dir: dir}
	// Created before the process so that the cleanups, last first, end
	// the process before the namespace goes.
	s.Netns = slapdtest.NewNetns(t)
	for _, o := range opts {
		o(s)
	}
	t0 := time.Now()
	if err := provisionInto(dir, s.Fresh); err != nil {
		t.Fatal(err)
	}
	s.Provisioned = time.Since(t0)
	t.Cleanup(s.Kill)
	s.Launch()
	return s
}

// WithFreshDomain is a Start option: the server provisions a domain of its
// own (about 13 s) instead of copying the template. Copies of the template
// are the same DC (same domain SID, same invocationId, same objectGUIDs):
// a DirSync cookie from one is valid on the others. Use it when the test
// needs a DC that is really another one.
func WithFreshDomain(s *Server) { s.Fresh = true }

func (s *Server) conf() string { return filepath.Join(s.Dir, "etc", "smb.conf") }

// URL is ldap:// at the DC's address in its namespace.
func (s *Server) URL() string { return "ldap://" + s.Netns.IP() }

// LDAPSURL is ldaps:// at the same address (a self-signed certificate).
func (s *Server) LDAPSURL() string { return "ldaps://" + s.Netns.IP() }

// BaseDN is the domain's naming context.
func (s *Server) BaseDN() string { return BaseDN }

// Launch starts samba on the existing data in the foreground, one process
// serving LDAP only, and waits until the administrator can bind.
func (s *Server) Launch() {
	s.t.Helper()
	samba, _ := Binaries()
	args := append(s.Netns.Exec(), samba, "-i", "-M", "single", "-s", s.conf(), "--option=server services=ldap")
	t0 := time.Now()
	// ip netns exec execs samba: the pid is samba's own.
	if err := s.StartLogged(args, filepath.Join(s.Dir, "samba.log")); err != nil {
		s.t.Fatal(err)
	}
	deadline := t0.Add(30 * time.Second)
	for {
		c, err := s.Admin()
		if err == nil {
			c.Close()
			s.Ready = time.Since(t0)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("samba on %s not ready after 30s: %v\n%s", s.URL(), err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) logTail() string { return slapdtest.LogTail(filepath.Join(s.Dir, "samba.log")) }

// Stop shuts samba down cleanly (SIGTERM) and waits, killing it after 10s.
func (s *Server) Stop() { s.End(syscall.SIGTERM, 10*time.Second) }

// Kill ends samba at once (SIGKILL) and waits for it.
func (s *Server) Kill() { s.End(syscall.SIGKILL, 10*time.Second) }

// Bind dials the DC and binds as dn with a simple bind over plain LDAP
// (the DC is configured to allow it); the caller closes the connection.
func (s *Server) Bind(dn, pw string) (*ldap.Conn, error) { return slapdtest.Bind(s.URL(), dn, pw) }

// Admin returns a connection bound as the domain administrator; the caller
// closes it.
func (s *Server) Admin() (*ldap.Conn, error) { return s.Bind(AdminDN, AdminPW) }

// adminTLS is an administrator's connection over ldaps://: Samba sets
// passwords only over an encrypted connection.
func (s *Server) adminTLS() (*ldap.Conn, error) {
	// The DC's own self-signed certificate, in a namespace this test made.
	return slapdtest.Bind(s.LDAPSURL(), AdminDN, AdminPW,
		ldap.DialWithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
}

func (s *Server) withAdmin(f func(*ldap.Conn) error) error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// UserDN is the DN CreateUser gives the user name.
func UserDN(name string) string { return "CN=" + ldap.EscapeDN(name) + "," + UsersDN }

// CreateUser adds an enabled user under CN=Users with password pw and
// returns its DN.
func (s *Server) CreateUser(name, pw string) (string, error) {
	c, err := s.adminTLS()
	if err != nil {
		return "", err
	}
	defer c.Close()
	dn := UserDN(name)
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{name})
	add.Attribute("userPrincipalName", []string{name + "@" + strings.ToLower(Realm)})
	add.Attribute("unicodePwd", []string{unicodePwd(pw)})
	add.Attribute("userAccountControl", []string{"512"}) // a normal, enabled account
	if err := c.Add(add); err != nil {
		return "", fmt.Errorf("create user %s: %w", name, err)
	}
	return dn, nil
}

// unicodePwd is pw as AD wants it: quoted, UTF-16LE.
func unicodePwd(pw string) string {
	q := `"` + pw + `"`
	b := make([]byte, 0, 2*len(q))
	for _, r := range q {
		b = append(b, byte(r), byte(r>>8))
	}
	return string(b)
}

// CreateGroup adds a global security group under CN=Users and returns its DN.
func (s *Server) CreateGroup(name string) (string, error) {
	dn := "CN=" + ldap.EscapeDN(name) + "," + UsersDN
	return dn, s.withAdmin(func(c *ldap.Conn) error {
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"group"})
		add.Attribute("sAMAccountName", []string{name})
		return c.Add(add)
	})
}

// AddToGroup adds memberDN to the group's member attribute.
func (s *Server) AddToGroup(groupDN, memberDN string) error {
	return s.withAdmin(func(c *ldap.Conn) error {
		m := ldap.NewModifyRequest(groupDN, nil)
		m.Add("member", []string{memberDN})
		return c.Modify(m)
	})
}

// RemoveFromGroup removes memberDN from the group's member attribute.
func (s *Server) RemoveFromGroup(groupDN, memberDN string) error {
	return s.withAdmin(func(c *ldap.Conn) error {
		m := ldap.NewModifyRequest(groupDN, nil)
		m.Delete("member", []string{memberDN})
		return c.Modify(m)
	})
}

// ModifyAttr replaces attr's values on dn; no values clears the attribute.
func (s *Server) ModifyAttr(dn, attr string, values ...string) error {
	return s.withAdmin(func(c *ldap.Conn) error {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace(attr, values)
		return c.Modify(m)
	})
}

// Rename gives dn the new RDN (CN=..., say) under the same parent and
// returns the new DN.
func (s *Server) Rename(dn, newRDN string) (string, error) {
	parent := parentDN(dn)
	return newRDN + "," + parent, s.withAdmin(func(c *ldap.Conn) error {
		return c.ModifyDN(ldap.NewModifyDNRequest(dn, newRDN, true, ""))
	})
}

// Move puts dn under newParent, keeping its RDN, and returns the new DN.
func (s *Server) Move(dn, newParent string) (string, error) {
	rdn, _, _ := strings.Cut(dn, ",")
	return rdn + "," + newParent, s.withAdmin(func(c *ldap.Conn) error {
		return c.ModifyDN(ldap.NewModifyDNRequest(dn, rdn, true, newParent))
	})
}

// CreateOU adds an organizational unit under the domain root and returns
// its DN, a target for Move.
func (s *Server) CreateOU(name string) (string, error) {
	dn := "OU=" + ldap.EscapeDN(name) + "," + BaseDN
	return dn, s.withAdmin(func(c *ldap.Conn) error {
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"organizationalUnit"})
		return c.Add(add)
	})
}

// DeleteUser deletes the object at dn: AD keeps it as a tombstone under
// CN=Deleted Objects.
func (s *Server) DeleteUser(dn string) error {
	return s.withAdmin(func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(dn, nil)) })
}

func parentDN(dn string) string {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) < 2 {
		_, p, _ := strings.Cut(dn, ",")
		return p
	}
	return (&ldap.DN{RDNs: d.RDNs[1:]}).String()
}

// GrantGetChanges gives userDN "Replicating Directory Changes" on the
// domain root, the right DirSync needs without the object-security flag.
func (s *Server) GrantGetChanges(userDN string) error {
	_, err := s.Tool("dsacl", "set", "--objectdn="+BaseDN, "--trusteedn="+userDN, "--car=get-changes", "--action=allow")
	return err
}

// Tool runs samba-tool args against the running DC as the administrator
// and returns its output: Samba's own view, to check replink's against.
func (s *Server) Tool(args ...string) (string, error) {
	_, tool := Binaries()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "-s", s.conf(), "-H", "ldap://"+s.Netns.IP(), "-U", Domain+`\Administrator%`+AdminPW)
	out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("samba-tool %s: %v: %s", args[0], err, out)
	}
	return string(out), nil
}

// Entry is what a mirror holds for one object: attribute → sorted values.
type Entry map[string][]string

// Snapshot reads, as the administrator, what a DirSync mirror of base
// should hold: every live object under base keyed by its objectGUID,
// with the attributes attrs (nil: all user attributes); objectGUID
// itself is left out of the entry. The DN is under "distinguishedName"
// when asked for.
func (s *Server) Snapshot(ctx context.Context, base string, attrs []string) (map[uuid.UUID]Entry, error) {
	c, err := s.Admin()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetTimeout(time.Until(dl))
	}
	ask := append([]string{"objectGUID"}, attrs...)
	if len(attrs) == 0 {
		ask = append(ask, "*")
	}
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", ask, nil)
	res, err := c.SearchWithPaging(req, 500)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]Entry, len(res.Entries))
	for _, e := range res.Entries {
		g, err := ldapadapter.ObjectGUID(e.GetRawAttributeValue("objectGUID"))
		if err != nil {
			return nil, fmt.Errorf("%s: objectGUID: %w", e.DN, err)
		}
		m := Entry{}
		for _, a := range e.Attributes {
			if strings.EqualFold(a.Name, "objectGUID") {
				continue
			}
			v := append([]string(nil), a.Values...)
			sort.Strings(v)
			m[a.Name] = v
		}
		out[g] = m
	}
	return out, nil
}

// GUID is the objectGUID of the object at dn.
func (s *Server) GUID(dn string) (uuid.UUID, error) {
	var g uuid.UUID
	err := s.withAdmin(func(c *ldap.Conn) error {
		res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"objectGUID"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("%s: %d entries", dn, len(res.Entries))
		}
		g, err = ldapadapter.ObjectGUID(res.Entries[0].GetRawAttributeValue("objectGUID"))
		return err
	})
	return g, err
}

// A DC vanishes and returns with its namespace as slapd does.
var _ slapdtest.Process = (*Server)(nil)
