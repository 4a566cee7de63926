package ldapadapter

import "fmt"

// BER as LDAP uses it (RFC 4511 §5.1: definite lengths, small tags), read
// in place: a tlv is a view into the frame, never a copy, so walking a
// message costs no allocation. Building asn1-ber's packet tree cost about
// 700 allocations for a 200-byte entry, twice over.

// BER class bits of an identifier octet.
const (
	classUniversal   = 0x00
	classApplication = 0x40
	classContext     = 0x80
)

// Universal tags LDAP messages use.
const (
	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagEnumerated  = 0x0a
	tagSequence    = 0x10
	tagSet         = 0x11
)

// tlv is one element: its class, constructed bit and tag number, and its
// content.
type tlv struct {
	class       byte
	constructed bool
	tag         int
	content     []byte
}

func (t tlv) is(class byte, tag int) bool { return t.class == class && t.tag == tag }

// berReader walks the elements of a constructed element's content.
type berReader struct{ b []byte }

func (r *berReader) more() bool { return len(r.b) > 0 }

// next reads the next element; a malformed one is an ErrProtocol.
func (r *berReader) next() (tlv, error) {
	b := r.b
	if len(b) < 2 {
		return tlv{}, berErrorf("truncated element")
	}
	id := b[0]
	if id&0x1f == 0x1f {
		return tlv{}, berErrorf("multi-byte tag")
	}
	t := tlv{class: id & 0xc0, constructed: id&0x20 != 0, tag: int(id & 0x1f)}
	n, h := int(b[1]), 2
	switch {
	case n == 0x80:
		return tlv{}, berErrorf("indefinite length")
	case n > 0x84:
		return tlv{}, berErrorf("length of %d bytes", n&0x7f)
	case n > 0x80:
		k := n & 0x7f
		if len(b) < 2+k {
			return tlv{}, berErrorf("truncated length")
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		h += k
	}
	if n < 0 || n > len(b)-h {
		return tlv{}, berErrorf("element of %d bytes overruns its container", n)
	}
	t.content = b[h : h+n : h+n]
	r.b = b[h+n:]
	return t, nil
}

// expect reads the next element and checks its class and tag.
func (r *berReader) expect(class byte, tag int, what string) (tlv, error) {
	t, err := r.next()
	if err != nil {
		return t, err
	}
	if !t.is(class, tag) {
		return t, berErrorf("%s: unexpected tag 0x%02x/%d", what, t.class, t.tag)
	}
	return t, nil
}

// children is a reader over a constructed element's content.
func (t tlv) children() berReader { return berReader{b: t.content} }

// integer reads an INTEGER or ENUMERATED content of up to 8 bytes.
func (t tlv) integer() (int64, error) {
	c := t.content
	if len(c) == 0 || len(c) > 8 {
		return 0, berErrorf("integer of %d bytes", len(c))
	}
	v := int64(int8(c[0])) // sign-extend the first byte
	for _, b := range c[1:] {
		v = v<<8 | int64(b)
	}
	return v, nil
}

// boolean reads a BOOLEAN content.
func (t tlv) boolean() (bool, error) {
	if len(t.content) != 1 {
		return false, berErrorf("boolean of %d bytes", len(t.content))
	}
	return t.content[0] != 0, nil
}

func berErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}
