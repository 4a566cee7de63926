package store

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/replink/replink/dn"
)

// writeOldLayout writes a file as replink wrote it before the DN index
// held UUIDs: dns keyed by the lower-cased DN, so of two entries whose DNs
// differ only in case, the index names one.
func writeOldLayout(t *testing.T, path string, c Content, dns ...string) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Update(func(tx *bolt.Tx) error {
		root, _ := tx.CreateBucket(bucketLinks)
		l, _ := root.CreateBucket([]byte("a"))
		raw, _ := json.Marshal(c)
		require.NoError(t, l.Put(keyContent, raw))
		entries, _ := l.CreateBucket(bucketEntries)
		index, _ := l.CreateBucket(bucketDNs)
		for _, name := range dns {
			id := uuid.New()
			require.NoError(t, entries.Put(id[:], encodeEntry(ldap.NewEntry(name, nil))))
			require.NoError(t, index.Put([]byte(strings.ToLower(name)), id[:]))
		}
		return l.Put(keyCount, []byte{byte(len(dns))})
	}))
}

// A file with the old index is read right, entry by entry, by a read-only
// reader, and its index is rebuilt when a link opens it for writing.
func TestOldIndexLayout(t *testing.T) {
	c := Content{BaseDN: "ou=p,dc=t", Scope: "sub", Filter: "(objectClass=*)"}
	want := []string{"uid=A,ou=p,dc=t", "uid=a,ou=p,dc=t", "uid=b,ou=p,dc=t"}
	path := filepath.Join(t.TempDir(), "old.db")
	writeOldLayout(t, path, c, want...)
	each := func(db *DB) []string {
		var got []string
		require.NoError(t, db.Each("a", func(e *ldap.Entry) error { got = append(got, e.DN); return nil }))
		return got
	}

	ro, err := Open(path, &Options{ReadOnly: true})
	require.NoError(t, err)
	got := each(ro)
	require.ElementsMatch(t, want, got, "read-only: every entry, although the old index hides one")
	require.Equal(t, "uid=b,ou=p,dc=t", got[2], "in DN order")
	require.NoError(t, ro.Close())

	db, err := Open(path, nil)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Link("a", c)
	require.NoError(t, err)
	require.NoError(t, db.bolt.View(func(tx *bolt.Tx) error {
		l := tx.Bucket(bucketLinks).Bucket([]byte("a"))
		require.True(t, indexCurrent(l), "rebuilt on open")
		require.Equal(t, len(want), l.Bucket(bucketDNs).Stats().KeyN)
		return nil
	}))
	got = each(db)
	require.ElementsMatch(t, want, got)
	require.Equal(t, "uid=b,ou=p,dc=t", got[2])
}

// slowIndexKey is indexKey without its fast path: the DN parsed and
// re-encoded by dn.Normalize, then lower-cased.
func slowIndexKey(name string, id []byte) []byte {
	norm, err := dn.Normalize(name)
	if err != nil {
		norm = name
	}
	return append(append([]byte(strings.ToLower(norm)), 0), id...)
}

// The fast path of indexKey takes only names that normalising leaves as
// they are (up to case), and gives the key the parse gives: over names
// built at random from the bytes that matter to RFC 4514, and over
// names written out.
func TestIndexKeyOfPlainDNs(t *testing.T) {
	id := uuid.New()
	for _, tc := range []struct {
		name  string
		plain bool
	}{
		{"uid=user000042,ou=people,dc=example,dc=com", true},
		{"UID=Ada.Lovelace,OU=People,DC=Example,DC=Com", true},
		{"cn=Ada Lovelace,ou=p-1,dc=t", true},
		{"mail=ada@example.com,dc=t", true},
		{"uid=a, ou=p", false},    // a space after the comma: trimmed
		{"uid=a ,ou=p", false},    // before it
		{"uid =a,ou=p", false},    // in the type
		{"cn=a+sn=b,ou=p", false}, // a multi-valued RDN: sorted
		{`cn=a\,b,ou=p`, false},   // an escape
		{"cn=#41,ou=p", false},    // a hex value
		{"cn=Zoë,ou=p", false},    // hex-escaped when re-encoded
		{"uid=a,,ou=p", false},    // not a DN
		{"", false},               // the root: the slow path is exact enough
		{"1.2.3=a,ou=p", false},   // a numeric type
		{`cn="a",ou=p`, false},    // quotes
		{"cn=a;ou=p", false},      // the old separator
	} {
		require.Equal(t, tc.plain, plainDN(tc.name), tc.name)
		require.Equal(t, string(slowIndexKey(tc.name, id[:])), string(indexKey(tc.name, id[:])), tc.name)
	}
	const alphabet = "aZ9-= ,+#\\\";<>.é\x01"
	r := rand.New(rand.NewPCG(1, 2))
	plain := 0
	for range 200000 {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		name := string(b)
		if plainDN(name) {
			plain++
		}
		require.Equal(t, string(slowIndexKey(name, id[:])), string(indexKey(name, id[:])), "%q", name)
	}
	require.Greater(t, plain, 100, "the random names include plain ones")
}
