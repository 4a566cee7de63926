package ldapadapter

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// reqMod is how slapd's accesslog records the modifications of a write
// (slapo-accesslog(5)): one value per modification value,
//
//	<attr>:<op> <value bytes>
//
// with op '+' add, '-' delete, '=' replace, '#' increment; "<attr>:-" and
// "<attr>:=" with nothing after them delete the attribute; a bare ":"
// separates two modifications of the same attribute with the same op. The
// value is raw bytes, binary included: there is no escaping, and an
// attribute description never holds a ':', so the first ':' splits.

// ErrReqMod is wrapped by every error parsing reqMod.
var ErrReqMod = errors.New("malformed reqMod value")

// ReqModError is one reqMod value that does not parse.
type ReqModError struct {
	Index  int    // of the value among the record's reqMod values
	Reason string // what is wrong with it
}

func (e *ReqModError) Error() string {
	return fmt.Sprintf("%s %d: %s", ErrReqMod, e.Index, e.Reason)
}

func (e *ReqModError) Unwrap() error { return ErrReqMod }

// parseReqMod turns a record's reqMod values into modifications, in order.
// Consecutive values of one attribute and op make one modification.
func parseReqMod(vals [][]byte) ([]Mod, error) {
	var mods []Mod
	split := false // a bare ':' ended the previous modification
	for i, v := range vals {
		if len(v) == 1 && v[0] == ':' {
			split = true
			continue
		}
		colon := bytes.IndexByte(v, ':')
		if colon < 0 {
			return nil, &ReqModError{i, "no ':' after the attribute"}
		}
		attr := v[:colon]
		if !validAttr(attr) {
			return nil, &ReqModError{i, fmt.Sprintf("attribute description %q", attr)}
		}
		rest := v[colon+1:]
		if len(rest) == 0 {
			return nil, &ReqModError{i, "no operation after ':'"}
		}
		var op ModOp
		switch rest[0] {
		case '+':
			op = ModAdd
		case '-':
			op = ModDelete
		case '=':
			op = ModReplace
		case '#':
			op = ModIncrement
		default:
			return nil, &ReqModError{i, fmt.Sprintf("operation %q", rest[0])}
		}
		rest = rest[1:]
		hasValue := len(rest) > 0
		if hasValue && rest[0] != ' ' {
			return nil, &ReqModError{i, "no space between the operation and the value"}
		}
		if !hasValue && (op == ModAdd || op == ModIncrement) {
			return nil, &ReqModError{i, op.String() + " without a value"}
		}
		last := len(mods) - 1
		if split || last < 0 || mods[last].Op != op || string(mods[last].Attr) != string(attr) || (!hasValue && len(mods[last].Values) == 0) {
			mods = append(mods, Mod{Op: op, Attr: string(attr)})
			last++
		} else if !hasValue {
			return nil, &ReqModError{i, "a value-less " + op.String() + " inside a modification with values"}
		}
		split = false
		if hasValue {
			mods[last].Values = append(mods[last].Values, rest[1:])
		}
	}
	return mods, nil
}

// validAttr reports whether b is an attribute description: a name or OID
// and options, RFC 4512 §2.5.
func validAttr(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == ';', c == '.':
		default:
			return false
		}
	}
	return true
}

// applyMods applies mods to e, in place, as the provider did: a
// modification that does not fit e (a value to add that it holds, a value
// or attribute to delete that it lacks, an increment of a missing or
// non-numeric value) is a value conflict, as slapd would have refused the
// write had its entry been e. Values compare as bytes; a value to delete
// that matches only ignoring case is taken as matching (the provider
// accepted the delete, so its matching rule ignored case).
func applyMods(e *ldap.Entry, mods []Mod) error {
	for _, m := range mods {
		a := attribute(e, m.Attr)
		switch m.Op {
		case ModAdd:
			if a == nil {
				a = &ldap.EntryAttribute{Name: m.Attr}
				e.Attributes = append(e.Attributes, a)
			}
			for _, v := range m.Values {
				if indexValue(a, v, false) >= 0 {
					return fallbackf(FallbackValueConflict, "%s: add of a value it holds", m.Attr)
				}
				a.ByteValues = append(a.ByteValues, v)
				a.Values = append(a.Values, string(v))
			}
		case ModDelete:
			if a == nil {
				return fallbackf(FallbackValueConflict, "%s: delete of a missing attribute", m.Attr)
			}
			if len(m.Values) == 0 {
				removeAttribute(e, m.Attr)
				continue
			}
			for _, v := range m.Values {
				i := indexValue(a, v, true)
				if i < 0 {
					return fallbackf(FallbackValueConflict, "%s: delete of a missing value", m.Attr)
				}
				a.ByteValues = append(a.ByteValues[:i:i], a.ByteValues[i+1:]...)
				a.Values = append(a.Values[:i:i], a.Values[i+1:]...)
			}
			if len(a.ByteValues) == 0 {
				removeAttribute(e, m.Attr)
			}
		case ModReplace:
			removeAttribute(e, m.Attr)
			if len(m.Values) > 0 {
				a = &ldap.EntryAttribute{Name: m.Attr}
				for _, v := range m.Values {
					a.ByteValues = append(a.ByteValues, v)
					a.Values = append(a.Values, string(v))
				}
				e.Attributes = append(e.Attributes, a)
			}
		case ModIncrement:
			if a == nil || len(m.Values) != 1 {
				return fallbackf(FallbackValueConflict, "%s: increment of a missing attribute", m.Attr)
			}
			by, err := strconv.ParseInt(string(m.Values[0]), 10, 64)
			if err != nil {
				return fallbackf(FallbackValueConflict, "%s: increment by %q", m.Attr, m.Values[0])
			}
			for i, v := range a.ByteValues {
				n, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					return fallbackf(FallbackValueConflict, "%s: increment of %q", m.Attr, v)
				}
				s := strconv.FormatInt(n+by, 10)
				a.ByteValues[i], a.Values[i] = []byte(s), s
			}
		default:
			return fmt.Errorf("%w: modification %v", ErrReqMod, m.Op)
		}
	}
	return nil
}

// attribute is e's attribute named name, ignoring case, or nil.
func attribute(e *ldap.Entry, name string) *ldap.EntryAttribute {
	for _, a := range e.Attributes {
		if equalFoldASCII(a.Name, name) {
			return a
		}
	}
	return nil
}

func removeAttribute(e *ldap.Entry, name string) {
	out := e.Attributes[:0]
	for _, a := range e.Attributes {
		if !equalFoldASCII(a.Name, name) {
			out = append(out, a)
		}
	}
	clear(e.Attributes[len(out):])
	e.Attributes = out
}

// indexValue finds v among a's values: the same bytes, or with fold, the
// same UTF-8 text ignoring case.
func indexValue(a *ldap.EntryAttribute, v []byte, fold bool) int {
	for i, w := range a.ByteValues {
		if bytes.Equal(w, v) {
			return i
		}
	}
	if fold && utf8.Valid(v) {
		for i, w := range a.ByteValues {
			if bytes.EqualFold(w, v) {
				return i
			}
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// cloneEntry copies e's structure (DN and value lists), so it can be
// modified while the handler's copy is being read; value bytes are shared,
// never written.
func cloneEntry(e *ldap.Entry) *ldap.Entry {
	c := &ldap.Entry{DN: e.DN, Attributes: make([]*ldap.EntryAttribute, len(e.Attributes))}
	for i, a := range e.Attributes {
		bv := a.ByteValues
		if len(bv) == 0 && len(a.Values) > 0 {
			bv = make([][]byte, len(a.Values))
			for j, v := range a.Values {
				bv[j] = []byte(v)
			}
		}
		vals := make([]string, len(bv))
		for j, v := range bv {
			vals[j] = string(v)
		}
		c.Attributes[i] = &ldap.EntryAttribute{Name: a.Name, Values: vals, ByteValues: append([][]byte(nil), bv...)}
	}
	return c
}
