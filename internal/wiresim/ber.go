package wiresim

import (
	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/google/uuid"
)

// OIDs of RFC 4533's controls and intermediate response.
const (
	OIDSyncRequest = "1.3.6.1.4.1.4203.1.9.1.1"
	OIDSyncState   = "1.3.6.1.4.1.4203.1.9.1.2"
	OIDSyncDone    = "1.3.6.1.4.1.4203.1.9.1.3"
	OIDSyncInfo    = "1.3.6.1.4.1.4203.1.9.1.4"
)

// Sync states of the Sync State control (RFC 4533 §2.3).
const (
	StatePresent = 0
	StateAdd     = 1
	StateModify  = 2
	StateDelete  = 3
)

// Attr is one attribute with its raw byte values.
type Attr struct {
	Name   string
	Values [][]byte
}

func octets(b []byte) *ber.Packet {
	return ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(b), "")
}

func str(s string) *ber.Packet { return octets([]byte(s)) }

func seq() *ber.Packet {
	return ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
}

func boolean(v bool) *ber.Packet {
	return ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, v, "")
}

// Message wraps op and controls in an LDAPMessage.
func Message(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	m := seq()
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	m.AppendChild(op)
	if len(controls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "")
		for _, c := range controls {
			cs.AppendChild(c)
		}
		m.AppendChild(cs)
	}
	return m.Bytes()
}

func control(oid string, value []byte) *ber.Packet {
	c := seq()
	c.AppendChild(str(oid))
	if value != nil {
		c.AppendChild(octets(value))
	}
	return c
}

// Result is an LDAPResult-shaped response with op tag op and code.
func Result(id int64, op ber.Tag, code int64, text string, controls ...*ber.Packet) []byte {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, op, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, ""))
	r.AppendChild(str(""))
	r.AppendChild(str(text))
	return Message(id, r, controls...)
}

// Entry is a SearchResultEntry, with controls.
func Entry(id int64, dn string, attrs []Attr, controls ...*ber.Packet) []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	e.AppendChild(str(dn))
	list := seq()
	for _, a := range attrs {
		p := seq()
		p.AppendChild(str(a.Name))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range a.Values {
			vals.AppendChild(octets(v))
		}
		p.AppendChild(vals)
		list.AppendChild(p)
	}
	e.AppendChild(list)
	return Message(id, e, controls...)
}

// SyncState is the Sync State control; a nil cookie is left out.
func SyncState(state int64, id uuid.UUID, cookie []byte) *ber.Packet {
	v := seq()
	v.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, state, ""))
	v.AppendChild(octets(id[:]))
	if cookie != nil {
		v.AppendChild(octets(cookie))
	}
	return control(OIDSyncState, v.Bytes())
}

// SyncEntry is an entry with its Sync State control.
func SyncEntry(id int64, dn string, attrs []Attr, state int64, u uuid.UUID, cookie []byte) []byte {
	return Entry(id, dn, attrs, SyncState(state, u, cookie))
}

// SyncDone is a successful SearchResultDone with a Sync Done control.
func SyncDone(id int64, cookie []byte, refreshDeletes bool) []byte {
	v := seq()
	if cookie != nil {
		v.AppendChild(octets(cookie))
	}
	if refreshDeletes {
		v.AppendChild(boolean(true))
	}
	return Result(id, 5, 0, "", control(OIDSyncDone, v.Bytes()))
}

func info(id int64, value *ber.Packet) []byte {
	ir := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 25, nil, "")
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, OIDSyncInfo, ""))
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, string(value.Bytes()), ""))
	return Message(id, ir)
}

// NewCookie is a Sync Info newcookie message.
func NewCookie(id int64, cookie []byte) []byte {
	return info(id, ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, string(cookie), ""))
}

// RefreshDelete (present false) or RefreshPresent (present true) is a Sync
// Info message ending a phase; done is refreshDone.
func RefreshPhase(id int64, present bool, cookie []byte, done bool) []byte {
	tag := ber.Tag(1)
	if present {
		tag = 2
	}
	v := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, "")
	if cookie != nil {
		v.AppendChild(octets(cookie))
	}
	if !done {
		v.AppendChild(boolean(false))
	}
	return info(id, v)
}

// SyncIDSet is a Sync Info syncIdSet message.
func SyncIDSet(id int64, cookie []byte, refreshDeletes bool, ids []uuid.UUID) []byte {
	v := ber.Encode(ber.ClassContext, ber.TypeConstructed, 3, nil, "")
	if cookie != nil {
		v.AppendChild(octets(cookie))
	}
	if refreshDeletes {
		v.AppendChild(boolean(true))
	}
	set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
	for _, u := range ids {
		set.AppendChild(octets(u[:]))
	}
	v.AppendChild(set)
	return info(id, v)
}
