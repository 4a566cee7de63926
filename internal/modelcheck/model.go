package modelcheck

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/replink/replink/internal/wiresim"
)

// Entry is one entry of the reference model: a DN and attributes with raw
// byte values.
type Entry struct {
	DN    string
	Attrs []wiresim.Attr
}

func (e *Entry) clone() *Entry {
	c := &Entry{DN: e.DN, Attrs: make([]wiresim.Attr, len(e.Attrs))}
	for i, a := range e.Attrs {
		c.Attrs[i] = wiresim.Attr{Name: a.Name, Values: slices.Clone(a.Values)}
	}
	return c
}

// canon is e in a form two copies can be compared by: DN, then attribute
// names with their sorted values.
func canon(dn string, attrs map[string][][]byte) string {
	var b strings.Builder
	b.WriteString(strconv.Quote(dn))
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		vals := slices.Clone(attrs[n])
		slices.SortFunc(vals, bytes.Compare)
		fmt.Fprintf(&b, " %s=[", n)
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Quote(string(v)))
		}
		b.WriteByte(']')
	}
	return b.String()
}

func (e *Entry) canon() string {
	m := map[string][][]byte{}
	for _, a := range e.Attrs {
		m[a.Name] = append(m[a.Name], a.Values...)
	}
	return canon(e.DN, m)
}

// Dialect is how the simulated provider behaves.
type Dialect int

const (
	Slapd Dialect = iota // OpenLDAP syncprov
	DS389                // 389-ds Content Synchronization
)

func (d Dialect) String() string {
	if d == DS389 {
		return "389-ds"
	}
	return "slapd"
}

// Model is the provider's content and enough of its history to answer a
// sync search from any cookie it issued, as slapd or 389-ds would.
type Model struct {
	Dialect Dialect
	Base    string // the base DN as the provider spells it
	BaseID  uuid.UUID
	CSN     int // change number of the last write
	Entries map[uuid.UUID]*Entry
	Order   []uuid.UUID // live entries, oldest first: deterministic iteration
	Changed map[uuid.UUID]int
	Created map[uuid.UUID]int
	// Deleted holds tombstones: the change number of the delete and the
	// last DN.
	Deleted   map[uuid.UUID]int
	DeletedDN map[uuid.UUID]string
	// Purged is the oldest change number a cookie may name for an
	// incremental refresh; an older one is answered with 4096 if the
	// generator wants.
	Purged int
	// CrashedAt is the change number at slapd's last crash (0: none), and
	// LogFrom the lower bound its session log claims since: the contextCSN
	// it had checkpointed, at or before the crash. A cookie in
	// [LogFrom, CrashedAt) is answered from a log that lost the deletions
	// up to CrashedAt.
	CrashedAt, LogFrom int
	rnd                *rand.Rand
}

const baseDN = "ou=p,dc=t"

// NewModel returns a provider holding the base and its two containers.
func NewModel(d Dialect, seed uint64) *Model {
	m := &Model{Dialect: d, Base: baseDN, Entries: map[uuid.UUID]*Entry{}, Changed: map[uuid.UUID]int{}, Created: map[uuid.UUID]int{},
		Deleted: map[uuid.UUID]int{}, DeletedDN: map[uuid.UUID]string{}, rnd: rand.New(rand.NewPCG(seed, 0x5eed))}
	m.seedTree()
	return m
}

func (m *Model) seedTree() {
	m.BaseID = m.add(baseDN, "organizationalUnit", "ou", "p")
	m.add("ou=a,"+baseDN, "organizationalUnit", "ou", "a")
	m.add("ou=b,"+baseDN, "organizationalUnit", "ou", "b")
}

func (m *Model) newUUID() uuid.UUID {
	var u uuid.UUID
	for i := range u {
		u[i] = byte(m.rnd.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func (m *Model) idAttr(u uuid.UUID) wiresim.Attr {
	if m.Dialect == DS389 {
		return wiresim.Attr{Name: "nsUniqueId", Values: [][]byte{[]byte(wiresim.NsUniqueID(u))}}
	}
	return wiresim.Attr{Name: "entryUUID", Values: [][]byte{[]byte(u.String())}}
}

func (m *Model) add(dn, class, rdnAttr, rdnValue string, more ...wiresim.Attr) uuid.UUID {
	u := m.newUUID()
	e := &Entry{DN: dn, Attrs: append([]wiresim.Attr{
		{Name: "objectClass", Values: [][]byte{[]byte("top"), []byte(class)}},
		{Name: rdnAttr, Values: [][]byte{[]byte(rdnValue)}},
		m.idAttr(u),
	}, more...)}
	m.CSN++
	m.Entries[u], m.Changed[u], m.Created[u] = e, m.CSN, m.CSN
	m.Order = append(m.Order, u)
	return u
}

func (m *Model) touch(u uuid.UUID) {
	m.CSN++
	m.Changed[u] = m.CSN
}

func (m *Model) remove(u uuid.UUID) {
	m.CSN++
	m.Deleted[u], m.DeletedDN[u] = m.CSN, m.Entries[u].DN
	delete(m.Entries, u)
	delete(m.Changed, u)
	m.Order = slices.DeleteFunc(m.Order, func(x uuid.UUID) bool { return x == u })
}

// Cookie is the cookie the provider issues at change number csn.
func (m *Model) Cookie(csn int) []byte {
	if m.Dialect == DS389 {
		return []byte(fmt.Sprintf("sim.invalid:389#cn=r,dc=t:%s:(objectClass=*)#%d", m.Base, csn))
	}
	return []byte(fmt.Sprintf("rid=001,csn=%020d#000000#000#000000", csn))
}

// ParseCookie returns the change number a cookie names, or -1.
func (m *Model) ParseCookie(c []byte) int {
	s := string(c)
	var num string
	if m.Dialect == DS389 {
		i := strings.LastIndexByte(s, '#')
		if i < 0 {
			return -1
		}
		num = s[i+1:]
	} else {
		after, ok := strings.CutPrefix(s, "rid=001,csn=")
		if !ok {
			return -1
		}
		num, _, _ = strings.Cut(after, "#")
	}
	n, err := strconv.Atoi(num)
	if err != nil || n > m.CSN {
		return -1
	}
	return n
}

// leaves are the entries a mutation may touch: everything below ou=a and ou=b.
func (m *Model) leaves() []uuid.UUID {
	var out []uuid.UUID
	for _, u := range m.Order {
		if strings.HasPrefix(m.Entries[u].DN, "uid=") {
			out = append(out, u)
		}
	}
	return out
}

// taken reports whether dn names a live entry other than except: exactly,
// or, unless caseExact, ignoring case.
func (m *Model) taken(dn string, except uuid.UUID, caseExact bool) bool {
	for u, e := range m.Entries {
		if u != except && (e.DN == dn || (!caseExact && strings.EqualFold(e.DN, dn))) {
			return true
		}
	}
	return false
}

func (m *Model) get(e *Entry, name string) *wiresim.Attr {
	for i := range e.Attrs {
		if e.Attrs[i].Name == name {
			return &e.Attrs[i]
		}
	}
	return nil
}

func (m *Model) set(e *Entry, name string, vals ...[]byte) {
	if a := m.get(e, name); a != nil {
		a.Values = vals
		return
	}
	e.Attrs = append(e.Attrs, wiresim.Attr{Name: name, Values: vals})
}
