package store

import (
	"fmt"
	"slices"
	"strings"

	"github.com/replink/replink/dn"
)

// Content is what a link replicates: a copy made from one content must
// never be continued from another (RFC 4533 §3.1).
type Content struct {
	BaseDN     string   `json:"base"`
	Scope      string   `json:"scope"` // "sub" or "one"
	Filter     string   `json:"filter"`
	Attributes []string `json:"attributes,omitempty"`
}

func (c Content) String() string {
	s := fmt.Sprintf("base %q scope %s filter %q", c.BaseDN, c.Scope, c.Filter)
	if len(c.Attributes) > 0 {
		s += fmt.Sprintf(" attributes %s", strings.Join(c.Attributes, ","))
	}
	return s
}

// Same compares two contents the way LDAP does: the base as a DN (a base
// respelled, "ou=p, dc=t" for "ou=p,dc=t", is the same base), attribute
// names case-insensitively and as a set. A store refuses a link whose content is not
// the Same as the one its copy was made from.
func (c Content) Same(o Content) bool {
	norm := func(a []string) []string {
		out := make([]string, len(a))
		for i, s := range a {
			out[i] = strings.ToLower(s)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return dn.Equal(c.BaseDN, o.BaseDN) && c.Scope == o.Scope && c.Filter == o.Filter &&
		slices.Equal(norm(c.Attributes), norm(o.Attributes))
}
