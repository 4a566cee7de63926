package mirror

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink/ldapadapter"
)

// WriteLDIF writes entries as LDIF in a canonical order, so that two
// copies diff cleanly: entries by DN, attributes by name, values sorted
// (replink dump, and /links/NAME/ldif). An Active Directory objectGUID is
// written in its usual string form. It sorts entries in place.
func WriteLDIF(w io.Writer, entries []*ldap.Entry) error {
	slices.SortFunc(entries, func(a, b *ldap.Entry) int { return strings.Compare(strings.ToLower(a.DN), strings.ToLower(b.DN)) })
	bw := bufio.NewWriter(w)
	for i, e := range entries {
		if i > 0 {
			bw.WriteByte('\n')
		}
		writeLine(bw, "dn", e.DN)
		attrs := slices.Clone(e.Attributes)
		slices.SortFunc(attrs, func(a, b *ldap.EntryAttribute) int {
			return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		})
		for _, a := range attrs {
			vals := slices.Clone(a.Values)
			slices.Sort(vals)
			guid := strings.EqualFold(a.Name, "objectGUID")
			for _, v := range vals {
				if g, err := ldapadapter.ObjectGUID([]byte(v)); guid && err == nil {
					v = g.String() // as AD's tools print it, not base64
				}
				writeLine(bw, a.Name, v)
			}
		}
	}
	return bw.Flush()
}

// writeLine writes "name: value", or "name:: base64" where RFC 2849 asks.
func writeLine(w *bufio.Writer, name, v string) {
	if safe(v) {
		fmt.Fprintf(w, "%s: %s\n", name, v)
		return
	}
	fmt.Fprintf(w, "%s:: %s\n", name, base64.StdEncoding.EncodeToString([]byte(v)))
}

func safe(v string) bool {
	if v == "" {
		return true
	}
	if v[0] == ' ' || v[0] == ':' || v[0] == '<' || v[len(v)-1] == ' ' || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
