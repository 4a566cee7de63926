package ldapadapter

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
)

// FuzzDecode feeds arbitrary frames to the sync message decoder: no panic,
// every failure an ErrProtocol, and on what go-ldap also decodes, the same
// entry and the same sync controls as go-ldap's decoding (the oracle).
func FuzzDecode(f *testing.F) {
	id := uuid.MustParse("4b3c2a1e-0000-4000-8000-000000000001")
	for _, seed := range [][]byte{
		fuzzEntry(7, "uid=a,dc=t", id, 1, "c1"),
		fuzzEntry(7, "", id, 0, ""),
		fuzzEntry(7, "uid=b,dc=t", id, 3, ""),
		fuzzInfo(7, 1, "cookie", true),
		fuzzInfo(7, 2, "", false),
		{0x30, 0x0c, 0x02, 0x01, 0x07, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := decodeSyncMessage(frame)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error is not a protocol error: %v", err)
			}
			return
		}
		p, err := ber.DecodePacketErr(frame)
		if err != nil || len(p.Children) < 2 {
			return // go-ldap would refuse it: nothing to compare
		}
		op := p.Children[1]
		switch m.op {
		case opSearchEntry:
			if len(op.Children) < 2 {
				return
			}
			dn, _ := op.Children[0].Value.(string)
			if dn != m.entry.DN {
				t.Fatalf("DN %q, go-ldap %q", m.entry.DN, dn)
			}
			var want []string
			for _, a := range op.Children[1].Children {
				if len(a.Children) < 2 {
					return
				}
				name, _ := a.Children[0].Value.(string)
				for _, v := range a.Children[1].Children {
					want = append(want, name+"="+string(v.ByteValue))
				}
			}
			var got []string
			for _, a := range m.entry.Attributes {
				for i, v := range a.Values {
					if string(a.ByteValues[i]) != v {
						t.Fatalf("values and byte values differ")
					}
					got = append(got, a.Name+"="+v)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("attributes %q, go-ldap %q", got, want)
			}
			if len(p.Children) > 2 && m.state != nil {
				for _, c := range p.Children[2].Children {
					dc, err := ldap.DecodeControl(c)
					if st, ok := dc.(*ldap.ControlSyncState); err == nil && ok {
						if st.State != m.state.State || st.EntryUUID != m.state.EntryUUID || !bytes.Equal(st.Cookie, m.state.Cookie) {
							t.Fatalf("sync state %+v, go-ldap %+v", m.state, st)
						}
					}
				}
			}
		case opIntermediate:
			if m.info == nil {
				return
			}
			dc, err := ldap.DecodeControl(op)
			want, ok := dc.(*ldap.ControlSyncInfo)
			if err != nil || !ok || want.Value != m.info.Value {
				return
			}
			if want.NewCookie != nil && !bytes.Equal(want.NewCookie.Cookie, m.info.NewCookie.Cookie) ||
				want.RefreshDelete != nil && (want.RefreshDelete.RefreshDone != m.info.RefreshDelete.RefreshDone || !bytes.Equal(want.RefreshDelete.Cookie, m.info.RefreshDelete.Cookie)) ||
				want.RefreshPresent != nil && (want.RefreshPresent.RefreshDone != m.info.RefreshPresent.RefreshDone || !bytes.Equal(want.RefreshPresent.Cookie, m.info.RefreshPresent.Cookie)) {
				t.Fatalf("sync info %+v, go-ldap %+v", m.info, want)
			}
		}
	})
}

func fuzzEntry(id int64, dn string, u uuid.UUID, state int64, cookie string) []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", ""))
	vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "x", ""))
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "y", ""))
	a.AppendChild(vals)
	attrs.AppendChild(a)
	e.AppendChild(attrs)
	return fuzzMessage(id, e, fuzzStateControl(state, u, cookie))
}

// fuzzStateControl is a Sync State control (RFC 4533 2.2): state, entryUUID
// and an optional cookie.
func fuzzStateControl(state int64, u uuid.UUID, cookie string) *ber.Packet {
	v := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	v.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, state, ""))
	v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(u[:]), ""))
	if cookie != "" {
		v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, ""))
	}
	ctl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidSyncState, ""))
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v.Bytes()), ""))
	return ctl
}

func fuzzInfo(id int64, choice ber.Tag, cookie string, done bool) []byte {
	val := ber.Encode(ber.ClassContext, ber.TypeConstructed, choice, nil, "")
	if cookie != "" {
		val.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, cookie, ""))
	}
	if !done {
		val.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, ""))
	}
	ir := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 25, nil, "")
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, oidSyncInfo, ""))
	ir.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 1, string(val.Bytes()), ""))
	return fuzzMessage(id, ir)
}

func fuzzMessage(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	m := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
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
