package store

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/replink/replink/dn"
)

// The dns bucket orders a link's entries by DN. Its keys are the folded,
// normalised DN, a zero byte, and the entry's 16 UUID bytes; values are
// empty. The UUID makes every key unique: two entries whose DNs differ
// only in the case of a case-exact value ("uid=A" and "uid=a") both stay
// listed, and the zero byte (never in a normalised DN, which hex-escapes
// control bytes) keeps "uid=a" before "uid=ab" whatever the UUIDs.
//
// Files written before this layout keyed the bucket by the lower-cased DN
// alone, so one entry could hide another; they have no keyIndex. Such an
// index cannot be trusted, so it is rebuilt from the entries when the link
// is opened for writing, and read-only readers (Each) sort the entries
// themselves instead of using it.
var (
	keyIndex     = []byte("dnindex")
	indexVersion = []byte{2}
)

// indexKey is an entry's key in the dns bucket.
func indexKey(name string, id []byte) []byte {
	if plainDN(name) { // most names: folding is normalising (the profile's largest share of a commit otherwise)
		k := make([]byte, len(name), len(name)+1+len(id))
		for i := range len(name) {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			k[i] = c
		}
		k = append(k, 0)
		return append(k, id...)
	}
	norm, err := dn.Normalize(name)
	if err != nil {
		norm = name // not a DN: ordered as given, never dropped
	}
	norm = strings.ToLower(norm)
	k := make([]byte, 0, len(norm)+1+len(id))
	k = append(k, norm...)
	k = append(k, 0)
	return append(k, id...)
}

// plainDN reports whether name is already in the form dn.Normalize gives
// up to case: RDNs of one type=value each, joined by commas, the types
// letters, digits and hyphens, the values of printable ASCII that RFC
// 4514 never escapes, without a space at either end or a leading '#'.
// Nothing in such a name is unescaped, re-escaped, trimmed or sorted.
func plainDN(name string) bool {
	typ, start := true, 0 // in the type of an RDN; where its part began
	for i := 0; i <= len(name); i++ {
		c := byte(',')
		if i < len(name) {
			c = name[i]
		}
		switch {
		case typ && c == '=':
			if i == start {
				return false
			}
			typ, start = false, i+1
		case typ:
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		case c == ',':
			if i == start || name[start] == ' ' || name[start] == '#' || name[i-1] == ' ' {
				return false
			}
			typ, start = true, i+1
		case c < ' ' || c > '~' || c == '"' || c == '+' || c == ';' || c == '<' || c == '>' || c == '\\' || c == '=':
			return false
		}
	}
	return true
}

// indexCurrent says whether link bucket b's index has the current layout.
func indexCurrent(b *bolt.Bucket) bool { return bytes.Equal(b.Get(keyIndex), indexVersion) }

// rebuildIndex replaces link bucket b's DN index with one made from its
// entries.
func rebuildIndex(b *bolt.Bucket) error {
	if b.Bucket(bucketDNs) != nil {
		if err := b.DeleteBucket(bucketDNs); err != nil {
			return err
		}
	}
	dns, err := b.CreateBucket(bucketDNs)
	if err != nil {
		return err
	}
	err = b.Bucket(bucketEntries).ForEach(func(id, raw []byte) error {
		name, err := decodeDN(raw)
		if err != nil {
			return fmt.Errorf("store: entry %x: %w", id, err)
		}
		return dns.Put(indexKey(name, id), nil)
	})
	if err != nil {
		return err
	}
	return b.Put(keyIndex, indexVersion)
}

// inDNOrder calls fn with the UUID of every entry of link bucket b, in the
// order of the index, or of a sort if the index has the old layout.
func inDNOrder(b *bolt.Bucket, fn func(id []byte) error) error {
	if indexCurrent(b) {
		return b.Bucket(bucketDNs).ForEach(func(k, _ []byte) error {
			if len(k) < 17 {
				return fmt.Errorf("store: DN index key %q: %w", k, errCorrupt)
			}
			return fn(k[len(k)-16:])
		})
	}
	var keys [][]byte
	err := b.Bucket(bucketEntries).ForEach(func(id, raw []byte) error {
		name, err := decodeDN(raw)
		if err != nil {
			return fmt.Errorf("store: entry %x: %w", id, err)
		}
		keys = append(keys, indexKey(name, id))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	for _, k := range keys {
		if err := fn(k[len(k)-16:]); err != nil {
			return err
		}
	}
	return nil
}

// EntryAt returns the UUID of the entry the committed copy holds at name,
// compared as DNs (spelling and case folded): the adapter uses it to know
// the base entry of a provider whose base search hides its identity
// (ldapadapter.EntryLocator). ok is false when no entry, or more than one
// (case twins), is there.
func (l *Link) EntryAt(_ context.Context, name string) (id uuid.UUID, ok bool, err error) {
	prefix := indexKey(name, nil) // the folded DN and its zero byte
	n := 0
	err = l.db.bolt.View(func(tx *bolt.Tx) error {
		b := l.bucket(tx)
		if !indexCurrent(b) {
			return nil
		}
		c := b.Bucket(bucketDNs).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+16; k, _ = c.Next() {
			if n++; n == 1 {
				copy(id[:], k[len(prefix):])
			}
		}
		return nil
	})
	if n != 1 {
		return uuid.Nil, false, err
	}
	return id, true, err
}
