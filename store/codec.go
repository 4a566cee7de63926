package store

import (
	"encoding/binary"
	"errors"

	"github.com/go-ldap/ldap/v3"
)

// An entry is stored as its DN and attributes, each string a uvarint
// length and its bytes: compact, and read back without a schema.

var errCorrupt = errors.New("store: corrupt entry record")

func encodeEntry(e *ldap.Entry) []byte {
	n := 2*binary.MaxVarintLen32 + len(e.DN)
	for _, a := range e.Attributes {
		n += 2*binary.MaxVarintLen32 + len(a.Name)
		for _, v := range a.ByteValues {
			n += binary.MaxVarintLen32 + len(v)
		}
	}
	b := make([]byte, 0, n)
	b = appendString(b, e.DN)
	b = binary.AppendUvarint(b, uint64(len(e.Attributes)))
	for _, a := range e.Attributes {
		b = appendString(b, a.Name)
		vals := a.ByteValues
		if len(vals) == 0 && len(a.Values) > 0 {
			vals = make([][]byte, len(a.Values))
			for i, v := range a.Values {
				vals[i] = []byte(v)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(vals)))
		for _, v := range vals {
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeDN reads only the DN of a record.
func decodeDN(b []byte) (string, error) {
	d := decoder{b: b}
	dn := d.bytes()
	return string(dn), d.err
}

func decodeEntry(b []byte) (*ldap.Entry, error) {
	d := decoder{b: b}
	e := &ldap.Entry{DN: string(d.bytes())}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		a := &ldap.EntryAttribute{Name: string(d.bytes())}
		k := d.count()
		for j := 0; j < k && d.err == nil; j++ {
			v := string(d.bytes()) // a copy: the record may live in the file's map
			a.Values = append(a.Values, v)
			a.ByteValues = append(a.ByteValues, []byte(v))
		}
		e.Attributes = append(e.Attributes, a)
	}
	return e, d.err
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count no larger than the bytes left could hold.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.err = errCorrupt
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
