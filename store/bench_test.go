package store_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// BenchmarkBatchCommit is one batch of 1,000 upserts committed with its
// cookie in one transaction (one fsync'd bbolt commit): ns/op is per batch.
func BenchmarkBatchCommit(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "r.db"), &store.Options{BatchSize: 100000})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l, err := db.Link("b", people)
	if err != nil {
		b.Fatal(err)
	}
	changes := make([]ldapadapter.Change, 1000)
	for i := range changes {
		dn := fmt.Sprintf("uid=user%06d,ou=people,dc=example,dc=com", i)
		changes[i] = upsert(uuid.New(), dn, map[string][]string{
			"objectClass": {"inetOrgPerson"}, "uid": {fmt.Sprintf("user%06d", i)}, "cn": {fmt.Sprintf("User %d", i)},
			"sn": {"Number"}, "mail": {fmt.Sprintf("user%06d@example.com", i)},
		})
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range changes {
			if err := l.Apply(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Save([]byte("cookie")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(changes)), "ns/change")
}

// BenchmarkCheck is the stat(2) every commit makes to see that the path
// still names the open file (DB.Check): compare it with a commit's cost.
func BenchmarkCheck(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "r.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for b.Loop() {
		if err := db.Check(); err != nil {
			b.Fatal(err)
		}
	}
}
