package modelcheck

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/replink/replink/internal/wiresim"
)

// Feature is something the generator may do. Each known-open defect has
// one, so a test can leave it out until the fix lands.
type Feature string

const (
	// PersistRefreshPresent: a Sync Info refreshPresent in the persist
	// stage (known defect 1: it wipes the copy).
	PersistRefreshPresent Feature = "persist-refresh-present"
	// HiddenDSE389: 389-ds with a root DSE the consumer may not read
	// (known defect 2: its incremental refreshOnly refresh prunes).
	HiddenDSE389 Feature = "389-hidden-dse"
	// CaseTwins: entries whose DNs differ only in the case of a
	// case-exact RDN value (known defect 3).
	CaseTwins Feature = "case-twins"
	// BinaryValues: values that are not UTF-8 (known defect 4).
	BinaryValues Feature = "binary-values"
	// StoreBeforeFeed: a crash loses what the feed wrote but did not
	// fsync, and right after a crash the store must hold nothing the feed
	// lacks (known defect 5: a store commit can precede the feed sync).
	StoreBeforeFeed Feature = "store-before-feed"
	// TornWrite: a crash in the middle of a feed write keeps a prefix of
	// it (known defect 6: the torn line poisons the next).
	TornWrite Feature = "torn-write"
	// SpacedBase: the consumer spells the base DN with a space after the
	// comma (known defect 8).
	SpacedBase Feature = "spaced-base"
	// BaseReplace: the base entry is deleted and added again with a new
	// UUID, the subtree with it.
	BaseReplace Feature = "base-replace"
	// Crashes: the consumer is killed at store and feed boundaries.
	Crashes Feature = "crash"
	// RefreshRequired: the provider answers a cookie with 4096.
	RefreshRequired Feature = "refresh-required"
	// Dialect389: 389-ds as the provider.
	Dialect389 Feature = "389-ds"
	// HiddenBaseID: the base entry search shows neither entryUUID nor
	// nsUniqueId, so the link learns the base's identity from the sync
	// stream only (new defect: forgotten at reconnect, see the report).
	HiddenBaseID Feature = "hidden-base-id"
	// UncoveredChanges: in the persist stage a change may come without a
	// cookie, the cookie that covers it only with a later message (new
	// defect: lost with the connection, it is committed anyway later).
	UncoveredChanges Feature = "uncovered-changes"
	// EarlyPresentCookie: a present phase whose changed entries come
	// first, the first one carrying the refresh's cookie (new defect: the
	// link does not know it is in a present phase yet and commits it).
	EarlyPresentCookie Feature = "early-present-cookie"
	// FeedPhantoms is a check, not a generator feature: an entry the feed
	// shows alive but that neither the store nor the provider has (a change
	// written to the feed, never committed to the store, and deleted on the
	// provider before the consumer came back) fails the feed check. Without
	// it such phantoms are tolerated (new defect, see the report).
	FeedPhantoms Feature = "feed-phantoms"
	// ProviderCrashes: slapd is killed and restarted. Its session log is in
	// memory: it comes back empty, claiming to cover every cookie from the
	// contextCSN it last checkpointed, which lags the crash. A cookie
	// between the two is answered with a delete phase that names none of
	// the deletions made before the crash (TestSoak found the copy keeping
	// them; the link now lists the content before such a refresh).
	ProviderCrashes Feature = "provider-crash"
)

// AllFeatures is every feature: the default.
func AllFeatures() []Feature {
	return []Feature{PersistRefreshPresent, HiddenDSE389, CaseTwins, BinaryValues, StoreBeforeFeed, TornWrite,
		SpacedBase, BaseReplace, Crashes, RefreshRequired, Dialect389, HiddenBaseID, UncoveredChanges, EarlyPresentCookie, FeedPhantoms,
		ProviderCrashes}
}

// Features is a set of enabled features.
type Features map[Feature]bool

// Enable returns the set of fs.
func Enable(fs ...Feature) Features {
	out := Features{}
	for _, f := range fs {
		out[f] = true
	}
	return out
}

// Without returns a copy of f without fs.
func (f Features) Without(fs ...Feature) Features {
	out := Features{}
	for k, v := range f {
		out[k] = v && !slices.Contains(fs, k)
	}
	return out
}

// ParseFeatures reads a comma-separated list; "all" is every feature.
func ParseFeatures(s string) (Features, error) {
	out := Features{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case name == "all":
			for _, f := range AllFeatures() {
				out[f] = true
			}
		case slices.Contains(AllFeatures(), Feature(name)):
			out[Feature(name)] = true
		default:
			return nil, fmt.Errorf("unknown feature %q (known: %v)", name, AllFeatures())
		}
	}
	return out, nil
}

// Setup is what a seed fixes for its whole run.
type Setup struct {
	Dialect     Dialect
	DSEHidden   bool // the root DSE shows no vendor
	BaseIDShown bool // the base entry search shows entryUUID/nsUniqueId
	ConfigBase  string
	BatchSize   int
	Persist     bool // the first process's mode
}

func (s Setup) String() string {
	return fmt.Sprintf("%s dse-hidden=%v base-id-shown=%v base=%q batch=%d persist=%v",
		s.Dialect, s.DSEHidden, s.BaseIDShown, s.ConfigBase, s.BatchSize, s.Persist)
}

// Kind is what a generator step does.
type Kind int

const (
	Mutate        Kind = iota // the provider's content changes
	Sync                      // the provider brings the consumer in sync, then the checks run
	PersistInfo               // a Sync Info message in the persist stage
	EndSession                // the provider ends the persist stage
	Crash                     // arm a crash at a store or feed boundary
	Restart                   // stop the consumer cleanly and start it again
	ProviderCrash             // the provider is killed and restarted (slapd: its session log lost)
)

// Mutation ops.
const (
	opAdd = iota
	opModify
	opDelete
	opRename
	opCaseRename
	opMove
	opAddTwin
	opReplaceBase
	nOps
)

var opNames = [...]string{"add", "modify", "delete", "rename", "case-rename", "move", "add-case-twin", "replace-base"}

// Crash points.
const (
	crashFeedWrite   = iota // the k-th write to the feed file, torn
	crashFeedSync           // the k-th fsync of the feed
	crashStoreCommit        // the k-th store commit
	nCrash
)

var crashNames = [...]string{"feed-write", "feed-sync", "store-commit"}

// Step is one generator step; its own Seed drives every choice it makes,
// so dropping other steps (shrinking) leaves its choices alone.
type Step struct {
	Kind Kind
	Op   int
	K    int
	Seed uint64
}

func (s Step) String() string {
	switch s.Kind {
	case Mutate:
		return fmt.Sprintf("mutate(%s,%d)", opNames[s.Op], s.Seed%1000)
	case Sync:
		return fmt.Sprintf("sync(%d)", s.Seed%1000)
	case PersistInfo:
		return fmt.Sprintf("persist-info(%d)", s.Op)
	case EndSession:
		return fmt.Sprintf("end-session(%d)", s.Op)
	case Crash:
		return fmt.Sprintf("crash(%s,%d)", crashNames[s.Op], s.K)
	case Restart:
		return fmt.Sprintf("restart(persist=%v)", s.Op == 1)
	case ProviderCrash:
		return fmt.Sprintf("provider-crash(%d)", s.Seed%1000)
	}
	return "?"
}

func (s Step) rand() *rand.Rand { return rand.New(rand.NewPCG(s.Seed, uint64(s.Kind)<<8|uint64(s.Op))) }

// Generate returns the setup and steps of seed.
func Generate(seed int64, n int, f Features) (Setup, []Step) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	s := Setup{ConfigBase: baseDN, BatchSize: 1000, BaseIDShown: r.IntN(4) != 0 || !f[HiddenBaseID], Persist: r.IntN(2) == 0}
	if f[Dialect389] && r.IntN(2) == 0 {
		s.Dialect = DS389
	}
	s.DSEHidden = r.IntN(3) == 0 && (s.Dialect == Slapd || f[HiddenDSE389])
	if r.IntN(3) == 0 && f[SpacedBase] {
		s.ConfigBase = "ou=p, dc=t"
	}
	if r.IntN(3) == 0 {
		s.BatchSize = 1 + r.IntN(4)
	}
	steps := []Step{{Kind: Sync, Seed: r.Uint64()}}
	for len(steps) < n {
		st := Step{Seed: r.Uint64()}
		switch p := r.IntN(100); {
		case p < 50:
			st.Kind, st.Op = Mutate, r.IntN(nOps)
			if (st.Op == opAddTwin && !f[CaseTwins]) || (st.Op == opReplaceBase && (!f[BaseReplace] || r.IntN(3) != 0)) {
				st.Op = opModify
			}
		case p < 75:
			st.Kind = Sync
		case p < 81:
			st.Kind, st.Op = PersistInfo, r.IntN(4)
			if st.Op == 0 && !f[PersistRefreshPresent] {
				st.Op = 1
			}
		case p < 87:
			st.Kind, st.Op = EndSession, r.IntN(3)
		case p < 95:
			if !f[Crashes] {
				continue
			}
			st.Kind, st.Op, st.K = Crash, r.IntN(nCrash), 1+r.IntN(4)
			if st.Op == crashFeedWrite && !f[TornWrite] {
				st.Op = crashFeedSync
			}
		default:
			st.Kind, st.Op = Restart, r.IntN(2)
			if f[ProviderCrashes] && r.IntN(2) == 0 {
				st.Kind, st.Op = ProviderCrash, 0
			}
		}
		steps = append(steps, st)
	}
	return s, append(steps, Step{Kind: Sync, Seed: r.Uint64()})
}

var names = []string{"alice", "bob", "carol", "dave", "erin", "frank"}

// flipCase changes the case of an RDN value's first letter.
func flipCase(v string) string {
	if v == "" {
		return v
	}
	c := v[:1]
	if strings.ToUpper(c) == c {
		return strings.ToLower(c) + v[1:]
	}
	return strings.ToUpper(c) + v[1:]
}

func (m *Model) value(r *rand.Rand, binary bool) []byte {
	if binary && r.IntN(2) == 0 {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return append(b, 0xff, 0xfe, 0x80) // never valid UTF-8
	}
	return []byte(fmt.Sprintf("v%d é", r.IntN(1000)))
}

func parentOf(dn string) string { _, p, _ := strings.Cut(dn, ","); return p }

func rdnValue(dn string) string {
	rdn, _, _ := strings.Cut(dn, ",")
	_, v, _ := strings.Cut(rdn, "=")
	return v
}

// Apply changes the model as step s says; it returns the entries to
// report in a persist stage, and whether the base was replaced.
func (m *Model) Apply(s Step, f Features) (changed []uuid.UUID, replaced bool) {
	r := s.rand()
	leaves := m.leaves()
	pick := func() (uuid.UUID, *Entry, bool) {
		if len(leaves) == 0 {
			return uuid.Nil, nil, false
		}
		u := leaves[r.IntN(len(leaves))]
		return u, m.Entries[u], true
	}
	op := s.Op
	if len(leaves) == 0 && op != opReplaceBase {
		op = opAdd
	}
	switch op {
	case opAdd:
		name := names[r.IntN(len(names))]
		if r.IntN(3) == 0 {
			name = flipCase(name)
		}
		parent := []string{"ou=a,", "ou=b,"}[r.IntN(2)] + m.Base
		dn := "uid=" + name + "," + parent
		for i := 2; m.taken(dn, uuid.Nil, false); i++ {
			dn = fmt.Sprintf("uid=%s%d,%s", name, i, parent)
		}
		attrs := []wiresim.Attr{{Name: "description", Values: [][]byte{m.value(r, false)}}}
		if f[BinaryValues] && r.IntN(2) == 0 {
			attrs = append(attrs, wiresim.Attr{Name: "jpegPhoto", Values: [][]byte{m.value(r, true)}})
		}
		u := m.add(dn, "inetOrgPerson", "uid", rdnValue(dn), attrs...)
		return []uuid.UUID{u}, false
	case opAddTwin:
		_, e, _ := pick()
		dn := "uid=" + flipCase(rdnValue(e.DN)) + "," + parentOf(e.DN)
		if m.taken(dn, uuid.Nil, true) {
			return nil, false
		}
		u := m.add(dn, "inetOrgPerson", "uid", rdnValue(dn), wiresim.Attr{Name: "description", Values: [][]byte{m.value(r, false)}})
		return []uuid.UUID{u}, false
	case opModify:
		u, e, _ := pick()
		switch r.IntN(3) {
		case 0:
			m.set(e, "description", m.value(r, false), m.value(r, false))
		case 1:
			m.set(e, "description", m.value(r, f[BinaryValues]))
		default:
			if f[BinaryValues] {
				m.set(e, "jpegPhoto", m.value(r, true))
			} else {
				m.set(e, "mail", []byte(fmt.Sprintf("%d@t", r.IntN(100))))
			}
		}
		m.touch(u)
		return []uuid.UUID{u}, false
	case opDelete:
		u, _, _ := pick()
		m.remove(u)
		return []uuid.UUID{u}, false
	case opRename, opCaseRename, opMove:
		u, e, _ := pick()
		value, parent := rdnValue(e.DN), parentOf(e.DN)
		switch op {
		case opRename:
			value = names[r.IntN(len(names))] + fmt.Sprint(r.IntN(10))
		case opCaseRename:
			value = flipCase(value)
		case opMove:
			if strings.HasPrefix(parent, "ou=a,") {
				parent = "ou=b," + m.Base
			} else {
				parent = "ou=a," + m.Base
			}
		}
		dn := "uid=" + value + "," + parent
		if m.taken(dn, u, f[CaseTwins] && op == opCaseRename) {
			return nil, false
		}
		e.DN = dn
		m.set(e, "uid", []byte(value))
		m.touch(u)
		return []uuid.UUID{u}, false
	case opReplaceBase:
		for _, u := range slices.Backward(slices.Clone(m.Order)) {
			m.remove(u)
		}
		m.seedTree()
		return nil, true
	}
	return nil, false
}
