package slapdtest

import (
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/go-ldap/ldap/v3"
)

var serial atomic.Int64

// Directory is what the write helpers need of a provider, slapd or 389-ds:
// a connection bound as a DN that may change everything.
type Directory interface {
	Admin() (*ldap.Conn, error)
}

// Write makes n changes as the root DN: adds, and every third change a
// modify of an earlier entry, every fifth a rename.
func (s *Server) Write(n int) error { return WriteTo(s, n) }

// Delete removes the first n people, in DN order.
func (s *Server) Delete(n int) error { return DeleteFrom(s, n) }

// SetReplicatorPassword changes the replicator's password, to make the
// provider refuse (or accept again) the consumer's credentials.
func (s *Server) SetReplicatorPassword(pw string) error { return SetReplicatorPasswordOn(s, pw) }

// ReplaceBase swaps the people subtree for a new, empty one (see ReplaceBaseOn).
func (s *Server) ReplaceBase() error { return ReplaceBaseOn(s) }

// WriteTo makes n changes on d: adds, and every third change a modify of an
// earlier entry, every fifth a rename.
func WriteTo(d Directory, n int) error {
	c, err := d.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	for i := 0; i < n; i++ {
		k := serial.Add(1)
		dns, err := people(c)
		if err != nil {
			return err
		}
		switch {
		case k%5 == 0 && len(dns) > 0:
			old := dns[0]
			req := ldap.NewModifyDNRequest(old, fmt.Sprintf("uid=renamed%d", k), true, "")
			if err := c.ModifyDN(req); err != nil {
				return fmt.Errorf("rename %s: %w", old, err)
			}
		case k%3 == 0 && len(dns) > 0:
			req := ldap.NewModifyRequest(dns[len(dns)-1], nil)
			req.Replace("description", []string{fmt.Sprintf("changed %d", k)})
			if err := c.Modify(req); err != nil {
				return err
			}
		default:
			req := ldap.NewAddRequest(fmt.Sprintf("uid=u%d,%s", k, PeopleDN), nil)
			req.Attribute("objectClass", []string{"inetOrgPerson"})
			req.Attribute("uid", []string{fmt.Sprintf("u%d", k)})
			req.Attribute("cn", []string{fmt.Sprintf("User %d", k)})
			req.Attribute("sn", []string{fmt.Sprintf("S%d", k)})
			if err := c.Add(req); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteFrom removes the first n people of d, in DN order.
func DeleteFrom(d Directory, n int) error {
	c, err := d.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	dns, err := people(c)
	if err != nil {
		return err
	}
	if n > len(dns) {
		return fmt.Errorf("delete %d of %d people", n, len(dns))
	}
	for _, dn := range dns[:n] {
		if err := c.Del(ldap.NewDelRequest(dn, nil)); err != nil {
			return err
		}
	}
	return nil
}

func people(c *ldap.Conn) ([]string, error) {
	res, err := c.Search(ldap.NewSearchRequest(PeopleDN, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		return nil, err
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	sort.Strings(dns)
	return dns, nil
}

// SetReplicatorPasswordOn changes the replicator's password on d.
func SetReplicatorPasswordOn(d Directory, pw string) error {
	c, err := d.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	req := ldap.NewModifyRequest(ReplicatorDN, nil)
	req.Replace("userPassword", []string{pw})
	return c.Modify(req)
}

// ReplaceBaseOn swaps the people subtree of d for a new, empty one: it renames
// ou=people away, with everything under it, and adds a fresh ou=people.
// syncprov notices that a persistent search's base now names another entry
// and ends that search with e-syncRefreshRequired ("search base has
// changed"); a consumer of ou=people must then reload it in full and delete
// what it holds of the old one.
func ReplaceBaseOn(d Directory) error {
	c, err := d.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	k := serial.Add(1)
	if err := c.ModifyDN(ldap.NewModifyDNRequest(PeopleDN, fmt.Sprintf("ou=retired%d", k), true, "")); err != nil {
		return fmt.Errorf("rename %s: %w", PeopleDN, err)
	}
	req := ldap.NewAddRequest(PeopleDN, nil)
	req.Attribute("objectClass", []string{"organizationalUnit"})
	req.Attribute("ou", []string{"people"})
	if err := c.Add(req); err != nil {
		return fmt.Errorf("add %s: %w", PeopleDN, err)
	}
	return nil
}
