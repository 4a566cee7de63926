package ldapadapter

import (
	"fmt"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// syncSearchRequest encodes the sync search (RFC 4511 §4.5.1 with the Sync
// Request control of RFC 4533 §2.2). The adapter sends it itself, with an
// ID of its own range, so the tap can route the answers to the session
// undecoded; go-ldap's filter compiler and control encoder still do their part.
func syncSearchRequest(id int64, cfg *Config, mode ldap.ControlSyncRequestMode, cookie []byte, reloadHint bool) ([]byte, error) {
	return searchRequest(id, cfg.BaseDN, cfg.Scope, cfg.Filter, cfg.Attributes, ldap.NewControlSyncRequest(mode, cookie, reloadHint).Encode())
}

// searchRequest encodes a search request with its controls.
func searchRequest(id int64, base string, scope int, filterText string, attributes []string, controls ...*ber.Packet) ([]byte, error) {
	filter, err := ldap.CompileFilter(filterText)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", filterText, err)
	}
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchRequest, nil, "Search Request")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, base, "Base DN"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(scope), "Scope"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(ldap.NeverDerefAliases), "Deref Aliases"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Size Limit"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time Limit"))
	req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Types Only"))
	req.AppendChild(filter)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	for _, a := range attributes {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, "Attribute"))
	}
	req.AppendChild(attrs)
	p.AppendChild(req)
	ctls := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "Controls")
	for _, c := range controls {
		ctls.AppendChild(c)
	}
	p.AppendChild(ctls)
	return p.Bytes(), nil
}
