package ldapadapter

import (
	"bytes"
	"context"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// withMods fills ch.Mods for a whole entry the provider resent in the
// persist stage, by comparing it with the copy's entry, when the handler
// can read it back (EntryReader): the change feed can then say what
// changed, as it does for a link that follows the log. The refresh stage,
// the bulk path, is left alone: there an upsert is a load, not an edit.
func (s *session) withMods(ctx context.Context, ch *Change) error {
	if !s.refreshd {
		return nil
	}
	if _, ok := s.c.handler.(EntryReader); !ok {
		return nil
	}
	old, err := (&deltaSession{s: s}).stored(ctx, ch.UUID)
	if err != nil || old == nil {
		return err
	}
	ch.Mods = diffEntries(old, ch.Entry)
	return nil
}

// diffEntries is what turns old into new: per attribute (in name order)
// the values removed and the values added; an attribute gone entirely is
// one value-less delete.
func diffEntries(old, new *ldap.Entry) []Mod {
	var mods []Mod
	names := make([]string, 0, len(old.Attributes)+len(new.Attributes))
	for _, a := range old.Attributes {
		names = append(names, a.Name)
	}
	for _, a := range new.Attributes {
		if attribute(old, a.Name) == nil {
			names = append(names, a.Name)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	for _, name := range names {
		was, is := byteValues(attribute(old, name)), byteValues(attribute(new, name))
		if len(is) == 0 {
			if len(was) > 0 {
				mods = append(mods, Mod{Op: ModDelete, Attr: name})
			}
			continue
		}
		if gone := missing(was, is); len(gone) > 0 {
			mods = append(mods, Mod{Op: ModDelete, Attr: name, Values: gone})
		}
		if added := missing(is, was); len(added) > 0 {
			mods = append(mods, Mod{Op: ModAdd, Attr: name, Values: added})
		}
	}
	return mods
}

func byteValues(a *ldap.EntryAttribute) [][]byte {
	switch {
	case a == nil:
		return nil
	case len(a.ByteValues) > 0 || len(a.Values) == 0:
		return a.ByteValues
	}
	out := make([][]byte, len(a.Values))
	for i, v := range a.Values {
		out[i] = []byte(v)
	}
	return out
}

// missing are the values of a that b lacks.
func missing(a, b [][]byte) [][]byte {
	var out [][]byte
	for _, v := range a {
		if !slices.ContainsFunc(b, func(w []byte) bool { return bytes.Equal(v, w) }) {
			out = append(out, v)
		}
	}
	return out
}
