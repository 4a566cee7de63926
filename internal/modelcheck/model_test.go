package modelcheck

import (
	"slices"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/ldapadapter"
)

func TestParseCookie(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dialect Dialect
		cookie  []byte
		want    int
	}{
		{"slapd", Slapd, nil, -1},
		{"slapd issued", Slapd, (&Model{Dialect: Slapd, Base: baseDN, CSN: 9}).Cookie(7), 7},
		{"389-ds issued", DS389, (&Model{Dialect: DS389, Base: baseDN, CSN: 9}).Cookie(9), 9},
		{"newer than the provider", Slapd, (&Model{Dialect: Slapd}).Cookie(10), -1},
		{"another dialect's", Slapd, (&Model{Dialect: DS389}).Cookie(3), -1},
		{"garbage", DS389, []byte("x#y"), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Model{Dialect: tc.dialect, Base: baseDN, CSN: 9}
			require.Equal(t, tc.want, m.ParseCookie(tc.cookie))
		})
	}
}

func TestReplay(t *testing.T) {
	f := newMemFile(&faults{}, nil)
	w := newTestFeed(t, f)
	u := uuid.New()
	require.NoError(t, w.Write("m", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: u, DN: "cn=x", Entry: ldapEntry("cn=x", "v", []byte{0xff, 0x00})}, nil))
	require.NoError(t, w.Write("m", ldapadapter.Change{Op: ldapadapter.Delete, UUID: u}, nil))
	require.NoError(t, w.Write("m", ldapadapter.Change{Op: ldapadapter.Upsert, UUID: u, DN: "cn=y", Entry: ldapEntry("cn=y", "v", []byte("z"))}, nil))
	require.NoError(t, w.Sync())
	data := f.contents()

	for _, tc := range []struct {
		name    string
		data    []byte
		alive   bool
		states  int
		wantErr bool
	}{
		{"whole", data, true, 2, false},
		{"torn last line", data[:len(data)-5], false, 1, false},
		{"torn line in the middle", append(append([]byte{}, data[:len(data)-5]...), data...), false, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			final, hist, err := replay(tc.data)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			_, alive := final[u]
			require.Equal(t, tc.alive, alive)
			require.Len(t, hist[u], tc.states)
		})
	}
}

// Shrink finds the two steps a failure needs among many.
func TestShrinkFindsTheStepsAFailureNeeds(t *testing.T) {
	cfg := Config{Seed: 1, Steps: 30, Features: Enable(AllFeatures()...)}
	run := func(c Config) error {
		if slices.Contains(c.Keep, 3) && slices.Contains(c.Keep, 17) {
			return &Failure{Check: "x"}
		}
		return &Failure{Check: "other"}
	}
	keep, f := Shrink(cfg, &Failure{Check: "x"}, run, 200)
	require.Equal(t, []int{3, 17}, keep)
	require.Equal(t, "x", f.Check)
}

func newTestFeed(t *testing.T, f *memFile) *feed.Writer {
	w, err := feed.New(f, feed.WithLogger(discard))
	require.NoError(t, err)
	return w
}

func ldapEntry(dn, attr string, v []byte) *ldap.Entry {
	return &ldap.Entry{DN: dn, Attributes: []*ldap.EntryAttribute{{Name: attr, Values: []string{string(v)}, ByteValues: [][]byte{v}}}}
}
