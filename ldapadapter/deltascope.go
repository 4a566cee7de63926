package ldapadapter

import (
	"bytes"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// logScope decides what a logged write means for the link's copy, which
// holds the entries of its base, scope and filter, with the attributes it
// asked for. The log search already keeps to writes under the base
// (dnSubtreeMatch on reqDN); the rest is decided here.
type logScope struct {
	base  *ldap.DN
	one   bool // single-level scope
	attrs attrSelector
	// filter is the link's filter, nil when it selects every entry
	// ("(objectClass=*)"); filterAttrs are the attributes it tests.
	filter      *ber.Packet
	filterAttrs map[string]bool
}

func newLogScope(cfg *Config) *logScope {
	sc := &logScope{one: cfg.Scope == ldap.ScopeSingleLevel, attrs: newAttrSelector(cfg.Attributes)}
	sc.base, _ = ldap.ParseDN(cfg.BaseDN) // validated by Config
	if !strings.EqualFold(strings.TrimSpace(cfg.Filter), "(objectClass=*)") {
		sc.filter, _ = ldap.CompileFilter(cfg.Filter)
		sc.filterAttrs = map[string]bool{}
		filterAttributes(sc.filter, sc.filterAttrs)
	}
	return sc
}

// holds reports whether dn is in the link's base and scope.
func (sc *logScope) holds(dn string) bool {
	d, err := ldap.ParseDN(dn)
	if err != nil {
		return false
	}
	if sc.one {
		return len(d.RDNs) == len(sc.base.RDNs)+1 && sc.base.AncestorOfFold(d)
	}
	return sc.base.EqualFold(d) || sc.base.AncestorOfFold(d)
}

// selected are the modifications of attributes the link replicates.
func (sc *logScope) selected(mods []Mod) []Mod {
	out := mods[:0:0]
	for _, m := range mods {
		if sc.attrs.selects(m.Attr) {
			out = append(out, m)
		}
	}
	return out
}

// unknown is what a modify or rename of an entry the copy does not hold
// means: nothing, outside the scope; a copy that diverged, when the filter
// selects every entry; and, under a narrower filter, nothing unless the
// write touched an attribute the filter tests (then the entry may have
// come into the filter, and only a refresh can bring it).
func (sc *logScope) unknown(r *logRecord, dn string) error {
	switch {
	case !sc.holds(dn):
		return nil
	case sc.filter == nil:
		return fallbackf(FallbackUnknownEntry, "%s of %s: the copy does not hold entry %s", r.typ, dn, r.id)
	case r.typ != "modify":
		return fallbackf(FallbackScope, "%s of %s, an entry the copy does not hold: it may now match the filter", r.typ, dn)
	}
	for _, m := range r.mods {
		if sc.filterAttrs[attrType(m.Attr)] {
			return fallbackf(FallbackScope, "modify of %s, an entry the copy does not hold, changes %s, which the filter tests", dn, m.Attr)
		}
	}
	return nil
}

// upsert is the change that leaves e in the copy, or takes it out when it
// no longer matches the filter (known: the copy held it).
func (sc *logScope) upsert(r *logRecord, e *ldap.Entry, mods []Mod, known bool) (*Change, error) {
	if sc.filter != nil {
		switch matchFilter(sc.filter, e, sc.attrs) {
		case matchNo:
			if known {
				return &Change{Op: Delete, UUID: r.id, DN: e.DN}, nil
			}
			return nil, nil
		case matchUnsure:
			return nil, fallbackf(FallbackScope, "%s of %s: the filter cannot be evaluated here", r.typ, e.DN)
		}
	}
	return &Change{Op: Upsert, UUID: r.id, DN: e.DN, Entry: e, Mods: mods}, nil
}

// attrSelector says which attributes the link's search returns: with no
// list, or "*", the user attributes; "+" the operational ones; and those
// named. The log records operational attributes (entryCSN, timestamps)
// that a plain search leaves out: they are dropped the same way.
type attrSelector struct {
	user, operational bool
	names             map[string]bool
}

func newAttrSelector(list []string) attrSelector {
	s := attrSelector{user: len(list) == 0, names: map[string]bool{}}
	for _, a := range list {
		switch a {
		case "*":
			s.user = true
		case "+":
			s.operational = true
		default:
			s.names[attrType(a)] = true
		}
	}
	return s
}

func (s attrSelector) selects(attr string) bool {
	t := attrType(attr)
	if s.names[t] {
		return true
	}
	if operationalAttrs[t] {
		return s.operational
	}
	return s.user
}

// attrType is an attribute description's type, lower-cased, options off.
func attrType(desc string) string {
	t, _, _ := strings.Cut(desc, ";")
	return strings.ToLower(t)
}

// operationalAttrs are the operational attributes slapd logs or returns
// on request: without the schema, this list tells them from user ones.
var operationalAttrs = map[string]bool{
	"entryuuid": true, "entrycsn": true, "creatorsname": true, "createtimestamp": true,
	"modifiersname": true, "modifytimestamp": true, "structuralobjectclass": true,
	"entrydn": true, "subschemasubentry": true, "hassubordinates": true, "numsubordinates": true,
	"contextcsn": true, "memberof": true, "pwdchangedtime": true, "pwdaccountlockedtime": true,
	"pwdfailuretime": true, "pwdhistory": true, "pwdgraceusetime": true, "pwdreset": true,
	"pwdpolicysubentry": true, "pwdlastsuccess": true, "authtimestamp": true,
}

type match uint8

const (
	matchNo match = iota
	matchYes
	matchUnsure
)

// matchFilter evaluates the common filter forms against e: and, or, not,
// presence and equality. Equality compares bytes, and a value equal only
// ignoring case is unsure (the matching rule is the schema's); any other
// form, and any attribute the copy does not replicate, is unsure: the link
// then refreshes rather than guess.
func matchFilter(f *ber.Packet, e *ldap.Entry, sel attrSelector) match {
	switch f.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		and := f.Tag == ldap.FilterAnd
		res := matchNo
		if and {
			res = matchYes
		}
		for _, c := range f.Children {
			switch m := matchFilter(c, e, sel); {
			case m == matchUnsure:
				res = matchUnsure
			case and && m == matchNo, !and && m == matchYes:
				return m
			}
		}
		return res
	case ldap.FilterNot:
		if len(f.Children) != 1 {
			return matchUnsure
		}
		switch matchFilter(f.Children[0], e, sel) {
		case matchYes:
			return matchNo
		case matchNo:
			return matchYes
		}
		return matchUnsure
	case ldap.FilterPresent:
		attr := string(f.Data.Bytes())
		if !sel.selects(attr) {
			return matchUnsure
		}
		if a := attribute(e, attr); a != nil && len(a.ByteValues) > 0 {
			return matchYes
		}
		return matchNo
	case ldap.FilterEqualityMatch:
		if len(f.Children) != 2 {
			return matchUnsure
		}
		attr, val := f.Children[0].Data.Bytes(), f.Children[1].Data.Bytes()
		if !sel.selects(string(attr)) {
			return matchUnsure
		}
		a := attribute(e, string(attr))
		if a == nil {
			return matchNo
		}
		res := matchNo
		for _, v := range a.ByteValues {
			if bytes.Equal(v, val) {
				return matchYes
			}
			if bytes.EqualFold(v, val) {
				res = matchUnsure
			}
		}
		return res
	}
	return matchUnsure
}

// filterAttributes collects the attribute types a filter tests.
func filterAttributes(f *ber.Packet, into map[string]bool) {
	if f == nil {
		return
	}
	switch f.Tag {
	case ldap.FilterAnd, ldap.FilterOr, ldap.FilterNot:
		for _, c := range f.Children {
			filterAttributes(c, into)
		}
	case ldap.FilterPresent:
		into[attrType(string(f.Data.Bytes()))] = true
	case ldap.FilterExtensibleMatch:
		for _, c := range f.Children {
			if c.Tag == 2 { // type
				into[attrType(string(c.Data.Bytes()))] = true
			}
		}
		into["*"] = true
	default:
		if len(f.Children) > 0 {
			into[attrType(string(f.Children[0].Data.Bytes()))] = true
		}
	}
}
