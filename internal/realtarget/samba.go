package realtarget

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/internal/sambatest"
	"github.com/replink/replink/internal/slapdtest"
)

// Samba is a Samba Active Directory DC, mirrored over DirSync: the link
// copies the whole domain (DirSync searches a naming context), keyed by
// objectGUID.
const Samba Kind = "samba"

// The DirSync link binds as a replicator of its own, a member of Domain
// Admins (which holds "Replicating Directory Changes" on the domain), so
// that refusing its credentials leaves the administrator the test writes
// as alone. AD wants complex passwords.
const (
	sambaReplicator   = "rlsync" // not "replicator": BUILTIN\Replicator has that name
	sambaReplicatorPW = "Replicat0r-Pw!"
	// SambaPoll is the DirSync link's poll period in the persist stage:
	// short, so that a deletion (which Samba does not notify) arrives
	// within a second.
	SambaPoll = time.Second
)

// SambaCompared are the attributes "check in-sync" compares, by
// objectGUID, between the DC and the copy.
var SambaCompared = []string{"cn", "name", "description", "member", "sAMAccountName", "distinguishedName", "objectClass"}

// sambaDC is a Samba DC as a Provider: scenario writes are user adds,
// modifies and renames under CN=Users, as the administrator.
type sambaDC struct {
	*sambatest.Server
	replicatorDN string
}

var sambaSerial atomic.Int64

// startSamba starts a DC (a copy of the template when the binary runs
// sambatest.Main) and creates the replicator.
func startSamba(t slapdtest.TB) *sambaDC {
	t.Helper()
	dc := &sambaDC{Server: sambatest.Start(t)}
	dn, err := dc.CreateUser(sambaReplicator, sambaReplicatorPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.AddToGroup("CN=Domain Admins,"+sambatest.UsersDN, dn); err != nil {
		t.Fatal(err)
	}
	dc.replicatorDN = dn
	return dc
}

func (dc *sambaDC) Addr() string { return dc.Netns.IP() + ":389" }

// ourUsers are the users Write made, in DN order.
func (dc *sambaDC) ourUsers(c *ldap.Conn) ([]string, error) {
	res, err := c.Search(ldap.NewSearchRequest(sambatest.UsersDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=user)(sAMAccountName=rlw*))", []string{"1.1"}, nil))
	if err != nil {
		return nil, err
	}
	var dns []string
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	sort.Strings(dns)
	return dns, nil
}

// Write makes n changes as the administrator: user adds (disabled
// accounts without a password: no ldaps needed), and every third change a
// modify of an earlier user, every fifth a rename.
func (dc *sambaDC) Write(n int) error {
	c, err := dc.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		k := sambaSerial.Add(1)
		dns, err := dc.ourUsers(c)
		if err != nil {
			return err
		}
		switch {
		case k%5 == 0 && len(dns) > 0:
			req := ldap.NewModifyDNRequest(dns[0], fmt.Sprintf("CN=rlrenamed%d", k), true, "")
			if err := c.ModifyDN(req); err != nil {
				return fmt.Errorf("rename %s: %w", dns[0], err)
			}
		case k%3 == 0 && len(dns) > 0:
			req := ldap.NewModifyRequest(dns[len(dns)-1], nil)
			req.Replace("description", []string{fmt.Sprintf("changed %d", k)})
			if err := c.Modify(req); err != nil {
				return fmt.Errorf("modify %s: %w", dns[len(dns)-1], err)
			}
		default:
			name := fmt.Sprintf("rlw%d", k)
			add := ldap.NewAddRequest(sambatest.UserDN(name), nil)
			add.Attribute("objectClass", []string{"user"})
			add.Attribute("sAMAccountName", []string{name})
			add.Attribute("description", []string{fmt.Sprintf("written %d", k)})
			if err := c.Add(add); err != nil {
				return fmt.Errorf("add %s: %w", name, err)
			}
		}
	}
	return nil
}

// Delete removes the first n users Write made, in DN order: AD keeps
// tombstones, which DirSync reports as deletions.
func (dc *sambaDC) Delete(n int) error {
	c, err := dc.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	dns, err := dc.ourUsers(c)
	if err != nil {
		return err
	}
	if n > len(dns) {
		return fmt.Errorf("delete %d: only %d users written", n, len(dns))
	}
	for _, dn := range dns[:n] {
		if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
			return fmt.Errorf("delete %s: %w", dn, err)
		}
	}
	return nil
}

// SetReplicatorPassword makes the DC refuse the replicator's bind (any
// password but slapdtest.ReplicatorPW) or accept it again. It disables the
// account rather than resetting its password: right after an
// administrator's reset, Samba still accepted the link's simple bind with
// the old password (presumably AD's old-password grace period).
func (dc *sambaDC) SetReplicatorPassword(pw string) error {
	uac := "512" // a normal, enabled account
	if pw != slapdtest.ReplicatorPW {
		uac = "514" // disabled: a bind fails with invalidCredentials (data 533)
	}
	return dc.ModifyAttr(dc.replicatorDN, "userAccountControl", uac)
}

// ReplaceBase has no DirSync counterpart: a DC never tells a DirSync
// consumer to start over.
func (dc *sambaDC) ReplaceBase() error {
	return fmt.Errorf("%w: refresh-required: DirSync has no e-syncRefreshRequired, a DC never asks a DirSync consumer to start over", ErrUnsupported)
}

// Snapshot is the DC's objects under base, by DN, with the compared
// attributes.
func (dc *sambaDC) Snapshot(ctx context.Context, base string) (map[string]map[string][]string, error) {
	m, err := dc.Server.Snapshot(ctx, base, SambaCompared)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string][]string, len(m))
	for _, e := range m {
		if dn := e["distinguishedName"]; len(dn) == 1 {
			out[dn[0]] = e
		}
	}
	return out, nil
}

// GUIDReader is what sambaDiff needs of the copy.
type GUIDReader interface {
	Known(context.Context) ([]uuid.UUID, error)
	Entry(context.Context, uuid.UUID) (*ldap.Entry, error)
}

// SambaDiff compares the copy with the DC by objectGUID on SambaCompared,
// or returns nil.
func SambaDiff(ctx context.Context, srv *sambatest.Server, copy GUIDReader) error {
	want, err := srv.Snapshot(ctx, sambatest.BaseDN, SambaCompared)
	if err != nil {
		return err
	}
	ids, err := copy.Known(ctx)
	if err != nil {
		return err
	}
	var problems []string
	held := map[uuid.UUID]bool{}
	for _, id := range ids {
		held[id] = true
		e, err := copy.Entry(ctx, id)
		if err != nil {
			return err
		}
		if e == nil {
			problems = append(problems, fmt.Sprintf("copy lists %s without an entry", id))
			continue
		}
		w, ok := want[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("copy holds %s (%s), the DC does not", id, e.DN))
			continue
		}
		for _, name := range SambaCompared {
			got := slices.Clone(e.GetEqualFoldAttributeValues(name))
			slices.Sort(got)
			var exp []string
			for k, v := range w {
				if strings.EqualFold(k, name) {
					exp = v
				}
			}
			if !slices.Equal(got, exp) {
				problems = append(problems, fmt.Sprintf("%s %s: %s is %q, the DC has %q", id, e.DN, name, got, exp))
			}
		}
		if dn := w["distinguishedName"]; len(dn) == 1 && !strings.EqualFold(dn[0], e.DN) {
			problems = append(problems, fmt.Sprintf("%s: DN %s, the DC has %s", id, e.DN, dn[0]))
		}
	}
	for id, w := range want {
		if !held[id] {
			problems = append(problems, fmt.Sprintf("copy lacks %s %v", id, w["distinguishedName"]))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	n := len(problems)
	if n > 10 {
		problems = append(problems[:10], fmt.Sprintf("and %d more", n-10))
	}
	return fmt.Errorf("%d entries vs %d, %d differences: %s", len(ids), len(want), n, strings.Join(problems, "; "))
}
