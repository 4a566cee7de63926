package ldapadapter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// LDAP protocol op tags (RFC 4511, APPLICATION n) the tap needs to know.
const (
	opBindResponse     = 1
	opSearchEntry      = 4
	opSearchDone       = 5
	opSearchReference  = 19
	opExtendedRequest  = 23
	opExtendedResponse = 24
	opIntermediate     = 25
)

// oidNoticeOfDisconnection is the unsolicited notification a provider sends,
// with message ID 0, before it closes (RFC 4511 4.4.1).
const oidNoticeOfDisconnection = "1.3.6.1.4.1.1466.20036"

// ErrProtocol is wrapped by every error about bytes the provider sent that
// are not a well-formed LDAP message.
var ErrProtocol = errors.New("ldap protocol error")

// envelope is what the tap learns of an inbound message without decoding it.
type envelope struct {
	id     int64
	op     int  // protocol op tag
	notice bool // a Notice of Disconnection
}

// probeAnswer reports whether the message answers one of the tap's
// keepalive probes: the reader drops it, and the poller keeps it to itself.
func (e envelope) probeAnswer() bool { return !e.notice && e.id >= probeIDBase }

// readFrame reads one BER-encoded LDAPMessage, refusing before allocating
// anything a length prefix larger than max, and an indefinite length.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:2]); err != nil {
		return nil, err
	}
	return readFrameRest(r, &hdr, max)
}

// readFrameRest reads the rest of a frame whose first two bytes, read
// already, are hdr[:2]: the length bytes (into hdr), then the body, refusing
// before allocating a length larger than max. A short read is
// io.ErrUnexpectedEOF. hdr is scratch space the caller may keep, so reading
// a frame allocates nothing but the frame.
func readFrameRest(r io.Reader, hdr *[6]byte, max int) ([]byte, error) {
	if hdr[0] != 0x30 {
		return nil, fmt.Errorf("%w: message starts with tag 0x%02x, not SEQUENCE", ErrProtocol, hdr[0])
	}
	n, h := 0, 2
	switch l := hdr[1]; {
	case l < 0x80:
		n = int(l)
	case l == 0x80:
		return nil, fmt.Errorf("%w: indefinite length", ErrProtocol)
	case l > 0x84:
		return nil, fmt.Errorf("%w: length of %d bytes", ErrProtocol, l&0x7f)
	default:
		k := int(l & 0x7f)
		if _, err := io.ReadFull(r, hdr[2:2+k]); err != nil {
			return nil, unexpectedEOF(err)
		}
		var b [4]byte
		copy(b[4-k:], hdr[2:2+k])
		u := binary.BigEndian.Uint32(b[:])
		if u > uint32(max) {
			return nil, fmt.Errorf("%w: message of %d bytes exceeds the limit of %d", ErrProtocol, u, max)
		}
		n, h = int(u), 2+k
	}
	if n > max {
		return nil, fmt.Errorf("%w: message of %d bytes exceeds the limit of %d", ErrProtocol, n, max)
	}
	frame := make([]byte, h+n)
	copy(frame, hdr[:h])
	if _, err := io.ReadFull(r, frame[h:]); err != nil {
		return nil, unexpectedEOF(err)
	}
	return frame, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseEnvelope reads what the tap routes by, walking the header bytes of
// a frame read by readFrame: the message ID, the protocol op, and for an
// unsolicited extended response its name. The body is left to whoever
// decodes the message, once.
func parseEnvelope(frame []byte) (envelope, error) {
	top := berReader{b: frame}
	msg, err := top.expect(classUniversal, tagSequence, "message")
	if err != nil {
		return envelope{}, err
	}
	r := msg.children()
	idT, err := r.expect(classUniversal, tagInteger, "message ID")
	if err != nil {
		return envelope{}, err
	}
	id, err := idT.integer()
	if err != nil || id < 0 || id > 1<<31-1 {
		return envelope{}, fmt.Errorf("%w: message ID out of range", ErrProtocol)
	}
	op, err := r.next()
	if err != nil {
		return envelope{}, err
	}
	if op.class != classApplication {
		return envelope{}, fmt.Errorf("%w: protocol op is not APPLICATION class", ErrProtocol)
	}
	e := envelope{id: id, op: op.tag}
	if id == 0 && e.op == opExtendedResponse {
		for c := op.children(); c.more(); {
			f, err := c.next()
			if err != nil {
				return envelope{}, err
			}
			if f.is(classContext, 10) && string(f.content) == oidNoticeOfDisconnection {
				e.notice = true
			}
		}
	}
	return e, nil
}

// finalResponse reports whether op ends the request it answers.
func finalResponse(op int) bool {
	return op != opSearchEntry && op != opSearchReference && op != opIntermediate
}

// whoAmIRequest encodes the keepalive probe: the WhoAmI extended operation
// (RFC 4532), the cheapest request slapd answers.
func whoAmIRequest(id int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opExtendedRequest, nil, "Extended Request")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.4203.1.11.3", "WhoAmI OID"))
	p.AppendChild(req)
	return p.Bytes()
}

// rootDSERequest encodes the alternative probe: a base search of the root DSE
// asking for no attributes.
func rootDSERequest(id int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 3, nil, "Search Request")
	req.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "Base DN"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "Scope"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "Deref"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "Size Limit"))
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "Time Limit"))
	req.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "Types Only"))
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "objectClass", "Filter present"))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Attributes")
	attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "1.1", "no attributes"))
	req.AppendChild(attrs)
	p.AppendChild(req)
	return p.Bytes()
}

// startTLSRequest encodes the StartTLS extended request (RFC 4511 4.14).
func startTLSRequest(id int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, opExtendedRequest, nil, "Extended Request")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.1466.20037", "StartTLS OID"))
	p.AppendChild(req)
	return p.Bytes()
}

// resultCode extracts the resultCode of an LDAPResult-shaped response frame.
func resultCode(frame []byte) (int64, string, error) {
	p, err := ber.DecodePacketErr(frame)
	if err != nil || len(p.Children) < 2 || len(p.Children[1].Children) < 3 {
		return 0, "", fmt.Errorf("%w: malformed response", ErrProtocol)
	}
	op := p.Children[1]
	code, ok := op.Children[0].Value.(int64)
	if !ok {
		return 0, "", fmt.Errorf("%w: malformed result code", ErrProtocol)
	}
	msg, _ := op.Children[2].Value.(string)
	return code, msg, nil
}
