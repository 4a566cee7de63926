package ldapadapter

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
)

// benchFrame is a SearchResultEntry of an inetOrgPerson with five
// attributes and its Sync State control: about 250 bytes, as in a refresh.
func benchFrame() []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid=user000042,ou=people,dc=example,dc=com", ""))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, kv := range [][2]string{{"objectClass", "inetOrgPerson"}, {"uid", "user000042"}, {"cn", "User Number 42"}, {"sn", "Number"}, {"mail", "user000042@example.com"}} {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, kv[0], ""))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, kv[1], ""))
		a.AppendChild(vals)
		attrs.AppendChild(a)
	}
	e.AppendChild(attrs)
	u := uuid.New()
	v := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	v.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 1, ""))
	v.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(u[:]), ""))
	ctl := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oidSyncState, ""))
	ctl.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v.Bytes()), ""))
	return fuzzMessage(syncIDBase+1, e, ctl)
}

// The tap's look at every inbound message: ID, op, notice or not.
func BenchmarkEnvelopePeek(b *testing.B) {
	f := benchFrame()
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseEnvelope(f); err != nil {
			b.Fatal(err)
		}
	}
}

// One entry with its sync state, decoded once into what the handler gets;
// BenchmarkDecodeEntry/go-ldap is the same frame through asn1-ber's packet
// tree and go-ldap's control decoder, as before, for the ratio.
func BenchmarkDecodeEntry(b *testing.B) {
	f := benchFrame()
	b.Run("replink", func(b *testing.B) {
		b.SetBytes(int64(len(f)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSyncMessage(f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-ldap", func(b *testing.B) {
		b.SetBytes(int64(len(f)))
		b.ReportAllocs()
		for b.Loop() {
			p, err := ber.DecodePacketErr(f)
			if err != nil {
				b.Fatal(err)
			}
			e := &ldap.Entry{DN: p.Children[1].Children[0].Value.(string)}
			for _, a := range p.Children[1].Children[1].Children {
				attr := &ldap.EntryAttribute{Name: a.Children[0].Value.(string)}
				for _, v := range a.Children[1].Children {
					attr.Values = append(attr.Values, v.Value.(string))
					attr.ByteValues = append(attr.ByteValues, v.ByteValue)
				}
				e.Attributes = append(e.Attributes, attr)
			}
			if _, err := ldap.DecodeControl(p.Children[2].Children[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
