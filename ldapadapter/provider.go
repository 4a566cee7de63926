package ldapadapter

import (
	"bytes"
	"errors"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/dn"
)

// ErrBaseReplaced is the cause of refresh-required when the consumer, not
// the provider, saw the search base deleted or replaced under a persistent
// search. 389-ds does not end the search with e-syncRefreshRequired then: it
// reports the old base entry deleted and the new one added, and never the
// entries that left with the old base, so the copy would keep them.
var ErrBaseReplaced = errors.New("search base entry replaced on the provider")

// dialect is what a provider implementation does that RFC 4533 leaves open
// or that departs from it, learnt from its root DSE at connect.
type dialect struct {
	vendor string // vendorVersion, or vendorName, for logs
	// changesOnly: a refreshOnly refresh from a cookie names only what
	// changed, yet ends with Sync Done refreshDeletes FALSE, which RFC 4533
	// §3.3.1 reads as a present phase: "unchanged entries not identified
	// as being present are deleted". Believing it deletes the copy. 389-ds
	// (Content Synchronization) does this, and reports deletions in a
	// syncIdSet with refreshDeletes TRUE, so its incremental refresh is a
	// delete phase whatever its Sync Done says.
	changesOnly bool
}

// dialectOf reads the root DSE's vendor attributes.
func dialectOf(e *ldap.Entry) dialect {
	if e == nil {
		return dialect{}
	}
	name, version := e.GetAttributeValue("vendorName"), e.GetAttributeValue("vendorVersion")
	d := dialect{vendor: version}
	if d.vendor == "" {
		d.vendor = name
	}
	// 389-ds and the servers built from it (Red Hat Directory Server,
	// FreeIPA's) share the Content Synchronization plugin.
	d.changesOnly = name == "389 Project" || strings.HasPrefix(version, "389-Directory/") ||
		strings.HasPrefix(version, "Red Hat-Directory/")
	return d
}

// learn takes the dialect from what a sync message shows, for a provider
// whose root DSE the bind identity cannot read: 389-ds's cookies and its
// entries' nsUniqueId give it away. It only ever learns changesOnly, the
// reading that prunes less.
func (d *dialect) learn(m *syncMessage) {
	switch {
	case m.state != nil:
		d.learnCookie(m.state.Cookie)
		if m.entry != nil && m.entry.GetAttributeValue("nsUniqueId") != "" {
			d.changesOnly, d.vendor = true, "389-ds (its entries carry nsUniqueId)"
		}
	case m.done != nil:
		d.learnCookie(m.done.Cookie)
	case m.info != nil:
		d.learnCookie(infoCookie(m.info))
	}
}

// learnCookie recognises a 389-ds Content Synchronization cookie,
// "host:port#binddn:base:filter#changenumber".
func (d *dialect) learnCookie(c []byte) {
	if !d.changesOnly && is389Cookie(c) {
		d.changesOnly, d.vendor = true, "389-ds (by its cookie)"
	}
}

func is389Cookie(c []byte) bool {
	server, rest, ok := bytes.Cut(c, []byte{'#'})
	if !ok || !bytes.Contains(server, []byte{':'}) {
		return false
	}
	i := bytes.LastIndexByte(rest, '#')
	if i < 0 || !bytes.Contains(rest[:i], []byte{':'}) {
		return false
	}
	n := bytes.TrimPrefix(rest[i+1:], []byte{'-'})
	if len(n) == 0 {
		return false
	}
	for _, b := range n {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// infoCookie is the cookie a Sync Info message carries, if any.
func infoCookie(si *ldap.ControlSyncInfo) []byte {
	switch {
	case si.NewCookie != nil:
		return si.NewCookie.Cookie
	case si.RefreshDelete != nil:
		return si.RefreshDelete.Cookie
	case si.RefreshPresent != nil:
		return si.RefreshPresent.Cookie
	case si.SyncIdSet != nil:
		return si.SyncIdSet.Cookie
	}
	return nil
}

// vendorRequest reads the root DSE attributes dialectOf needs.
func vendorRequest() *ldap.SearchRequest {
	return ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"vendorName", "vendorVersion"}, nil)
}

// baseRequest is the base check: the base entry must exist, and its
// identity binds the cookie and lets the session see it replaced.
func baseRequest(base string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"entryUUID", "nsUniqueId"}, nil)
}

// baseIdentity returns the base entry's identity for the cookie binding
// (its entryUUID, else its nsUniqueId) and the UUID the sync protocol
// names it by: slapd uses entryUUID, 389-ds its nsUniqueId
// ("66c89f0b-e97711f1-9c69cb2b-6c6f195c", the same 16 bytes grouped
// otherwise). Either may be empty or zero when the provider hides them.
func baseIdentity(e *ldap.Entry) (binding string, syncID uuid.UUID) {
	entryUUID, nsUniqueID := e.GetAttributeValue("entryUUID"), e.GetAttributeValue("nsUniqueId")
	binding = entryUUID
	if binding == "" {
		binding = nsUniqueID
	}
	for _, v := range []string{nsUniqueID, entryUUID} {
		if id, err := uuid.Parse(hexOnly(v)); v != "" && err == nil {
			return binding, id
		}
	}
	return binding, uuid.UUID{}
}

// isBase reports whether dn names the link's search base, however either
// is spelled (spaces after commas, case): DNs are compared parsed, never as
// strings. Only a DN with as many commas as the base is parsed, so the
// entries of a refresh cost one count each.
func (c *conn) isBase(name string) bool {
	return strings.Count(name, ",") == strings.Count(c.cfg.BaseDN, ",") && dn.Equal(name, c.cfg.BaseDN)
}

// hexOnly drops the dashes of a UUID however they are grouped.
func hexOnly(s string) string { return strings.ReplaceAll(s, "-", "") }
