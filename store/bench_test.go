package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
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

// BenchmarkRefreshFromSlapd is one initial refresh from a real slapd, of
// REPLINK_BENCH_ENTRIES people (default 10,000) and their ou, into the
// memory store and into a new bbolt file: entries/s of each (their ratio
// is what the bbolt store costs) and the bbolt commits per refresh (each
// is two fdatasyncs in bbolt). It is skipped without slapd.
func BenchmarkRefreshFromSlapd(b *testing.B) {
	n := 10000
	if s := os.Getenv("REPLINK_BENCH_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			b.Fatalf("REPLINK_BENCH_ENTRIES=%q: want a number of entries", s)
		}
	}
	srv := slapdtest.Start(b, slapdtest.WithPeople(n))
	quiet := slog.New(slog.DiscardHandler)
	refresh := func(h ldapadapter.Handler) {
		m := fsm.DefaultConfig()
		m.Mode, m.RefreshInterval = replink.RefreshOnly, time.Hour
		l, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "m", Machine: m, LDAP: ldapadapter.Config{
			URL: srv.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.PeopleDN, Handler: h, Logger: quiet,
		}}, fsm.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
		defer cancel()
		if err := l.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := l.WaitFor(ctx, replink.Polling); err != nil {
			b.Fatal(err)
		}
	}
	entries := func(b *testing.B) {
		b.ReportMetric(float64(b.N*(n+1))/b.Elapsed().Seconds(), "entries/s")
	}
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			refresh(ldapadapter.NewMemoryStore())
		}
		entries(b)
	})
	b.Run("bbolt", func(b *testing.B) {
		var commits int64
		for b.Loop() {
			b.StopTimer()
			db, err := store.Open(filepath.Join(b.TempDir(), "r.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			sl, err := db.Link("m", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			refresh(sl)
			b.StopTimer()
			if held, err := sl.Len(); err != nil || held != n+1 {
				b.Fatalf("the store holds %d entries (%v), want %d", held, err, n+1)
			}
			commits += sl.Commits()
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		entries(b)
		b.ReportMetric(float64(commits)/float64(b.N), "commits/op")
	})
}
