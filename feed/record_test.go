package feed_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/ldapadapter"
)

var t0 = time.Date(2026, 11, 26, 7, 1, 2, 0, time.UTC)

func clock() time.Time { return t0 }

// entry builds an entry from raw byte values only (Values left empty), as
// a provider's binary attribute may come.
func entry(dn string, attrs map[string][][]byte) *ldap.Entry {
	e := &ldap.Entry{DN: dn}
	for name, vals := range attrs {
		e.Attributes = append(e.Attributes, &ldap.EntryAttribute{Name: name, ByteValues: vals})
	}
	return e
}

// roundTrip writes c through a stream Writer and decodes the line back.
func roundTrip(t *testing.T, c ldapadapter.Change, position []byte) (feed.Record, string) {
	t.Helper()
	var out bytes.Buffer
	w := feed.NewStream(&out, feed.WithClock(clock))
	require.NoError(t, w.Write("people", c, position))
	require.NoError(t, w.Close())
	line := out.String()
	require.True(t, strings.HasSuffix(line, "\n"))
	require.Equal(t, 1, strings.Count(line, "\n"), "one line")
	r, err := feed.Decode([]byte(line))
	require.NoError(t, err)
	return r, line
}

func selfSignedCert(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ada"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return der
}

// Every value comes back byte for byte: text as JSON strings, anything
// else base64 under "name::".
func TestValuesRoundTrip(t *testing.T) {
	cert := selfSignedCert(t)
	jpeg := []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0xff, 0xd9}
	id := uuid.MustParse("6f1f7d5e-0000-4000-8000-000000000001")
	for _, tc := range []struct {
		name     string
		change   ldapadapter.Change
		position []byte
		inLine   []string // what the line shows
	}{
		{"text", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "uid=ada,ou=p", Entry: entry("uid=ada,ou=p", map[string][][]byte{"cn": {[]byte("Ada"), []byte("Zoë <&>")}})},
			[]byte("rid=000,csn=1"), []string{`"cn":["Ada","Zoë <&>"]`, `"dn":"uid=ada,ou=p"`, `"cookie":"rid=000,csn=1"`}},
		{"certificate", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "uid=ada", Entry: entry("uid=ada", map[string][][]byte{"userCertificate;binary": {cert}})},
			nil, []string{`"userCertificate;binary::":["`}},
		{"photo beside text", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "uid=ada", Entry: entry("uid=ada", map[string][][]byte{"jpegPhoto": {jpeg}, "cn": {[]byte("Ada")}})},
			nil, []string{`"jpegPhoto::":["/9j/4AAQSkZJRgD/2Q=="]`, `"cn":["Ada"]`}},
		{"one binary value makes the attribute base64", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "uid=ada", Entry: entry("uid=ada", map[string][][]byte{"x": {[]byte("ok"), {0xc3}}})},
			nil, []string{`"x::":["b2s=","ww=="]`}},
		{"NUL and controls are text", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "uid=ada", Entry: entry("uid=ada", map[string][][]byte{"x": {[]byte("a\x00b\n")}})},
			nil, []string{`"x":["a\u0000b\n"]`}},
		{"binary DN and cookie", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "cn=\xff", Entry: entry("cn=\xff", map[string][][]byte{"cn": {{0xff}}})},
			[]byte{0x80, 'c'}, []string{`"dn::":"Y249/w=="`, `"cookie::":"gGM="`}},
		{"delete", ldapadapter.Change{Op: ldapadapter.Delete, UUID: id},
			[]byte("c"), []string{`"op":"delete"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, line := roundTrip(t, tc.change, tc.position)
			for _, s := range tc.inLine {
				require.Contains(t, line, s)
			}
			require.NotContains(t, line, "\ufffd")
			require.Equal(t, t0, r.Time)
			require.Equal(t, "people", r.Link)
			require.Equal(t, tc.change.Op, r.Op)
			require.Equal(t, tc.change.UUID, r.UUID)
			require.Equal(t, tc.change.DN, r.DN)
			require.Equal(t, tc.position, r.Cookie)
			if tc.change.Entry == nil {
				require.Nil(t, r.Attributes)
				require.Nil(t, r.Entry())
				return
			}
			for _, a := range tc.change.Entry.Attributes {
				require.Equal(t, a.ByteValues, r.Attributes[a.Name], a.Name)
			}
			require.Len(t, r.Attributes, len(tc.change.Entry.Attributes))
			if cert := r.Attributes["userCertificate;binary"]; cert != nil {
				parsed, err := x509.ParseCertificate(cert[0])
				require.NoError(t, err, "the certificate survives")
				require.Equal(t, "ada", parsed.Subject.CommonName)
			}
		})
	}
}

// A seeded property test: random bytes, random attribute shapes, all come
// back exactly.
func TestRandomValuesRoundTrip(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(4533, 1))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			if rng.IntN(3) == 0 {
				b[i] = byte('a' + rng.IntN(26)) // mostly-text values too
			} else {
				b[i] = byte(rng.Uint32())
			}
		}
		return b
	}
	for i := range 500 {
		attrs := map[string][][]byte{}
		for a := range rng.IntN(5) {
			vals := make([][]byte, 1+rng.IntN(3))
			for j := range vals {
				vals[j] = randBytes(rng.IntN(40))
			}
			attrs[string(rune('a'+a))+"ttr"] = vals
		}
		dn := "cn=" + string(randBytes(rng.IntN(8)))
		c := ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: dn, Entry: entry(dn, attrs)}
		position := randBytes(rng.IntN(10))
		r, _ := roundTrip(t, c, position)
		require.Equal(t, dn, r.DN, "case %d", i)
		if len(position) == 0 {
			position = nil
		}
		require.Equal(t, position, r.Cookie, "case %d", i)
		if len(attrs) == 0 {
			require.Empty(t, r.Attributes)
			continue
		}
		require.Equal(t, attrs, r.Attributes, "case %d", i)
	}
}

func TestDecodeRefusesNonRecords(t *testing.T) {
	for _, tc := range []struct{ name, line string }{
		{"not JSON", `{"op":"upsert"`},
		{"unknown op", `{"op":"modify","uuid":"6f1f7d5e-0000-4000-8000-000000000001"}`},
		{"bad uuid", `{"op":"delete","uuid":"x"}`},
		{"bad base64", `{"op":"upsert","uuid":"6f1f7d5e-0000-4000-8000-000000000001","attributes":{"x::":["%%"]}}`},
		{"empty", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := feed.Decode([]byte(tc.line))
			require.ErrorIs(t, err, feed.ErrMalformed)
		})
	}
}

// A modify's record says what changed as well as the new state: each
// modification with its values, base64 under "values::" when any is not
// UTF-8, and comes back byte for byte.
func TestModsRoundTrip(t *testing.T) {
	photo := []byte{0xff, 0xd8, 0xff, 0xe0, 0x00}
	c := change("uid=a,ou=p,dc=t")
	c.Mods = []ldapadapter.Mod{
		{Op: ldapadapter.ModReplace, Attr: "description", Values: [][]byte{[]byte("new"), []byte("été")}},
		{Op: ldapadapter.ModAdd, Attr: "jpegPhoto", Values: [][]byte{photo}},
		{Op: ldapadapter.ModDelete, Attr: "mail"},
		{Op: ldapadapter.ModIncrement, Attr: "uidNumber", Values: [][]byte{[]byte("1")}},
	}
	var out bytes.Buffer
	w := feed.NewStream(&out, feed.WithClock(clock))
	require.NoError(t, w.Write("l", c, nil))
	require.NoError(t, w.Close())
	require.Contains(t, out.String(), `"mods":[{"op":"replace","attr":"description","values":["new","été"]}`)
	require.Contains(t, out.String(), `{"op":"add","attr":"jpegPhoto","values::":["/9j/4AA="]}`)
	r, err := feed.Decode(out.Bytes())
	require.NoError(t, err)
	require.Equal(t, c.Mods, r.Mods)

	_, err = feed.Decode([]byte(`{"time":"2026-12-02T00:00:00Z","link":"l","op":"upsert","uuid":"` + c.UUID.String() + `","mods":[{"op":"rename","attr":"x"}]}`))
	require.ErrorIs(t, err, feed.ErrMalformed)
}
