package ldapadapter

import (
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/replink/replink/internal/slapdtest"
)

// BenchmarkProbe measures one keepalive round trip against a real slapd on
// a bound connection: the request written, every answer frame read up to
// the final one. WhoAmI is the default probe; the root DSE search is the
// alternative. Compare the two ns/op figures of one run.
func BenchmarkProbe(b *testing.B) {
	slapdtest.Require(b)
	srv := slapdtest.Start(b)
	for _, p := range []struct {
		name string
		req  func(int64) []byte
	}{
		{"whoami", whoAmIRequest},
		{"rootdse", rootDSERequest},
	} {
		b.Run(p.name, func(b *testing.B) {
			c := boundConn(b, srv)
			id := int64(1)
			for b.Loop() {
				id++
				if _, err := c.Write(p.req(id)); err != nil {
					b.Fatal(err)
				}
				for {
					f, err := readFrame(c, 1<<16)
					if err != nil {
						b.Fatal(err)
					}
					env, err := parseEnvelope(f)
					if err != nil {
						b.Fatal(err)
					}
					if env.id == id && finalResponse(env.op) {
						break
					}
				}
			}
		})
	}
}

// boundConn is a raw connection to srv, bound as the replicator.
func boundConn(b *testing.B, srv *slapdtest.Server) net.Conn {
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	m := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	m.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), ""))
	bind := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 0, nil, "")
	bind.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(3), ""))
	bind.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, slapdtest.ReplicatorDN, ""))
	bind.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, slapdtest.ReplicatorPW, ""))
	m.AppendChild(bind)
	if _, err := c.Write(m.Bytes()); err != nil {
		b.Fatal(err)
	}
	f, err := readFrame(c, 1<<16)
	if err != nil {
		b.Fatal(err)
	}
	if code, msg, err := resultCode(f); err != nil || code != 0 {
		b.Fatalf("bind: code %d %q %v", code, msg, err)
	}
	return c
}
