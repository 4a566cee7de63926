package feed

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
)

// Record is one change as the feed holds it, with every byte of its values.
type Record struct {
	Time time.Time
	Link string
	Op   ldapadapter.Op
	UUID uuid.UUID
	DN   string // may be empty for a delete
	// Attributes maps each attribute name to its values, exactly as the
	// provider sent them; nil for a delete.
	Attributes map[string][][]byte
	// Cookie is the provider's stream position the copy had committed when
	// this change came; nil before the first.
	Cookie []byte
	// Mods says what a modify changed, when the link knows (delta-syncrepl
	// gives it; whole-entry syncrepl computes it in the persist stage);
	// Attributes is then the entry's new state.
	Mods []ldapadapter.Mod
}

// Entry is the record's entry (nil for a delete), with Values and
// ByteValues both set, attributes by name.
func (r Record) Entry() *ldap.Entry {
	if r.Op != ldapadapter.Upsert {
		return nil
	}
	e := &ldap.Entry{DN: r.DN}
	for _, name := range slices.Sorted(maps.Keys(r.Attributes)) {
		a := &ldap.EntryAttribute{Name: name}
		for _, v := range r.Attributes[name] {
			a.Values = append(a.Values, string(v))
			a.ByteValues = append(a.ByteValues, v)
		}
		e.Attributes = append(e.Attributes, a)
	}
	return e
}

// base64Suffix marks a field or an attribute whose values are base64, as
// LDIF's "::". An attribute description never holds a colon.
const base64Suffix = "::"

// line is a record's JSON form. Fields named with "::" hold base64 (the
// encoding/json form of a []byte); at most one of a pair is set.
type line struct {
	Time       time.Time           `json:"time"`
	Link       string              `json:"link"`
	Op         string              `json:"op"`
	DN         string              `json:"dn,omitempty"`
	DN64       []byte              `json:"dn::,omitempty"`
	UUID       string              `json:"uuid"`
	Attributes map[string][]string `json:"attributes,omitempty"`
	Cookie     string              `json:"cookie,omitempty"`
	Cookie64   []byte              `json:"cookie::,omitempty"`
	Mods       []modLine           `json:"mods,omitempty"`
}

// modLine is one modification: its values as strings, or all base64 under
// "values::" when any is not UTF-8, as for attributes.
type modLine struct {
	Op       string   `json:"op"`
	Attr     string   `json:"attr"`
	Values   []string `json:"values,omitempty"`
	Values64 [][]byte `json:"values::,omitempty"`
}

var modOps = map[string]ldapadapter.ModOp{"add": ldapadapter.ModAdd, "delete": ldapadapter.ModDelete, "replace": ldapadapter.ModReplace, "increment": ldapadapter.ModIncrement}

// appendRecord appends r's JSON line, newline included, to b.
func appendRecord(b *bytes.Buffer, r *Record) error {
	l := line{Time: r.Time, Link: r.Link, Op: r.Op.String(), UUID: r.UUID.String()}
	l.DN, l.DN64 = textOrBinary([]byte(r.DN))
	l.Cookie, l.Cookie64 = textOrBinary(r.Cookie)
	if r.Attributes != nil {
		l.Attributes = make(map[string][]string, len(r.Attributes))
		for name, vals := range r.Attributes {
			addAttribute(l.Attributes, name, vals)
		}
	}
	for _, m := range r.Mods {
		ml := modLine{Op: m.Op.String(), Attr: m.Attr}
		if slices.ContainsFunc(m.Values, func(v []byte) bool { return !utf8.Valid(v) }) {
			ml.Values64 = m.Values
		} else {
			for _, v := range m.Values {
				ml.Values = append(ml.Values, string(v))
			}
		}
		l.Mods = append(l.Mods, ml)
	}
	enc := json.NewEncoder(b) // ends the line with '\n'
	enc.SetEscapeHTML(false)
	return enc.Encode(&l)
}

// addAttribute adds an attribute's values to m: as strings under name if
// all are valid UTF-8, else all base64 under name + "::".
func addAttribute(m map[string][]string, name string, vals [][]byte) {
	binary := slices.ContainsFunc(vals, func(v []byte) bool { return !utf8.Valid(v) })
	out := make([]string, len(vals))
	for i, v := range vals {
		if binary {
			out[i] = base64.StdEncoding.EncodeToString(v)
		} else {
			out[i] = string(v)
		}
	}
	if binary {
		name += base64Suffix
	}
	m[name] = append(m[name], out...)
}

// textOrBinary returns v as a string if it is valid UTF-8, else as bytes
// for a base64 field.
func textOrBinary(v []byte) (string, []byte) {
	if utf8.Valid(v) {
		return string(v), nil
	}
	return "", v
}

// Decode reads one feed line (its newline optional) back into the record
// written, byte for byte.
func Decode(b []byte) (Record, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	r := Record{Time: l.Time, Link: l.Link, DN: l.DN, Cookie: []byte(l.Cookie)}
	switch l.Op {
	case "upsert":
		r.Op = ldapadapter.Upsert
	case "delete":
		r.Op = ldapadapter.Delete
	default:
		return Record{}, fmt.Errorf("%w: op %q", ErrMalformed, l.Op)
	}
	id, err := uuid.Parse(l.UUID)
	if err != nil {
		return Record{}, fmt.Errorf("%w: uuid %q: %w", ErrMalformed, l.UUID, err)
	}
	r.UUID = id
	if l.DN64 != nil {
		r.DN = string(l.DN64)
	}
	if l.Cookie64 != nil {
		r.Cookie = l.Cookie64
	}
	if len(r.Cookie) == 0 {
		r.Cookie = nil
	}
	if l.Attributes != nil {
		r.Attributes = make(map[string][][]byte, len(l.Attributes))
	}
	for key, vals := range l.Attributes {
		name, binary := strings.CutSuffix(key, base64Suffix)
		out := make([][]byte, len(vals))
		for i, v := range vals {
			if !binary {
				out[i] = []byte(v)
				continue
			}
			if out[i], err = base64.StdEncoding.DecodeString(v); err != nil {
				return Record{}, fmt.Errorf("%w: attribute %q: %w", ErrMalformed, key, err)
			}
		}
		r.Attributes[name] = append(r.Attributes[name], out...)
	}
	for _, ml := range l.Mods {
		op, ok := modOps[ml.Op]
		if !ok {
			return Record{}, fmt.Errorf("%w: mod op %q", ErrMalformed, ml.Op)
		}
		m := ldapadapter.Mod{Op: op, Attr: ml.Attr, Values: ml.Values64}
		for _, v := range ml.Values {
			m.Values = append(m.Values, []byte(v))
		}
		r.Mods = append(r.Mods, m)
	}
	return r, nil
}
