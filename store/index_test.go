package store

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
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
