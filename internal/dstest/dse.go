package dstest

import (
	"fmt"
	"strings"
)

// dse is dse.ldif, 389-ds's configuration, as entries of lines. It is
// edited only while the server is down, which is when 389-ds reads it.
type dse struct{ entries [][]string }

func parseDSE(text string) *dse {
	d := &dse{}
	for _, block := range strings.Split(strings.TrimRight(text, "\n"), "\n\n") {
		d.entries = append(d.entries, strings.Split(block, "\n"))
	}
	return d
}

func (d *dse) String() string {
	blocks := make([]string, len(d.entries))
	for i, e := range d.entries {
		blocks[i] = strings.Join(e, "\n")
	}
	return strings.Join(blocks, "\n\n") + "\n"
}

// set gives attr the single value in entry dn, replacing its values (and
// their folded continuation lines) or adding it.
func (d *dse) set(dn, attr, value string) error {
	for i, e := range d.entries {
		if len(e) == 0 || !strings.EqualFold(strings.TrimPrefix(e[0], "dn: "), dn) {
			continue
		}
		var out []string
		skipping := false
		for _, l := range e {
			if skipping && strings.HasPrefix(l, " ") {
				continue
			}
			name, _, _ := strings.Cut(l, ":")
			skipping = strings.EqualFold(name, attr)
			if !skipping {
				out = append(out, l)
			}
		}
		d.entries[i] = append(out, attr+": "+value)
		return nil
	}
	return fmt.Errorf("dse.ldif has no entry %q", dn)
}
