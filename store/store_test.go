package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.uber.org/goleak"

	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

var people = store.Content{BaseDN: "ou=people,dc=example,dc=com", Scope: "sub", Filter: "(objectClass=*)"}

func upsert(id uuid.UUID, dn string, attrs map[string][]string) ldapadapter.Change {
	return ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: dn, Entry: ldap.NewEntry(dn, attrs)}
}

func open(t *testing.T, path string, batch int) *store.DB {
	t.Helper()
	db, err := store.Open(path, &store.Options{BatchSize: batch})
	require.NoError(t, err)
	return db
}

// dump returns DN → attribute → values of the committed copy.
func dump(t *testing.T, db *store.DB, link string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	require.NoError(t, db.Each(link, func(e *ldap.Entry) error {
		out[e.DN] = ldapadapter.EntryAttributes(e)
		return nil
	}))
	return out
}

func TestChangesAndCookieCommitTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replica.db")
	db := open(t, path, 1000)
	l, err := db.Link("a", people)
	require.NoError(t, err)
	ctx := t.Context()
	ada, bob := uuid.New(), uuid.New()
	require.NoError(t, l.Apply(ctx, upsert(ada, "uid=ada,ou=people,dc=example,dc=com", map[string][]string{"cn": {"Ada"}})))
	require.NoError(t, l.Apply(ctx, upsert(bob, "uid=bob,ou=people,dc=example,dc=com", map[string][]string{"cn": {"Bob"}})))
	require.Zero(t, l.Commits(), "changes wait for a cookie or a full batch")
	require.NoError(t, l.Save([]byte("c1")))
	require.EqualValues(t, 1, l.Commits())

	// a rename keeps the UUID; a delete needs no DN
	require.NoError(t, l.Apply(ctx, upsert(ada, "uid=ada.lovelace,ou=people,dc=example,dc=com", map[string][]string{"cn": {"Ada", "Ada Lovelace"}})))
	require.NoError(t, l.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Delete, UUID: bob}))
	// applied but not committed when the process dies: the file keeps c1
	require.NoError(t, db.Close())

	db = open(t, path, 1000)
	defer db.Close()
	l, err = db.Link("a", people)
	require.NoError(t, err)
	cookie, err := l.Load()
	require.NoError(t, err)
	require.Equal(t, "c1", string(cookie))
	require.Len(t, dump(t, db, "a"), 2, "the data matches the cookie: both entries, no rename yet")

	require.NoError(t, l.Apply(ctx, upsert(ada, "uid=ada.lovelace,ou=people,dc=example,dc=com", map[string][]string{"cn": {"Ada Lovelace", "Ada"}})))
	require.NoError(t, l.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Delete, UUID: bob}))
	require.NoError(t, l.Save([]byte("c2")))
	require.Equal(t, map[string]map[string][]string{
		"uid=ada.lovelace,ou=people,dc=example,dc=com": {"cn": {"Ada", "Ada Lovelace"}},
	}, dump(t, db, "a"))
	n, err := l.Len()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	ids, err := l.Known(ctx)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{ada}, ids)

	require.NoError(t, l.Save(nil))
	cookie, err = l.Load()
	require.NoError(t, err)
	require.Nil(t, cookie, "a nil cookie erases it")

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// A refresh of many entries costs a commit per batch at most, not one per
// change: fewer when a batch is still being committed as the next one
// fills, which then grows (up to ten batches) instead of waiting.
func TestBatches(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "r.db"), 100)
	defer db.Close()
	l, err := db.Link("a", people)
	require.NoError(t, err)
	for i := range 1050 {
		require.NoError(t, l.Apply(t.Context(), upsert(uuid.New(), "uid=u"+string(rune('a'+i%26))+string(rune('0'+i/26%10))+string(rune('0'+i/260)), nil)))
	}
	require.NoError(t, l.Wait(), "the last full batch commits in the background")
	commits, committed := l.Commits(), l.Committed()
	require.GreaterOrEqual(t, commits, int64(1))
	require.LessOrEqual(t, commits, int64(10))
	require.GreaterOrEqual(t, committed, 100*commits, "no batch commits before it is full")
	require.Greater(t, committed, int64(1050-1000), "what is left pending is less than ten batches")
	cookie, err := l.Load()
	require.NoError(t, err)
	require.Nil(t, cookie, "changes committed past the cookie: a restart must reload in full")
	require.NoError(t, l.Save([]byte("end")))
	cookie, err = l.Load()
	require.NoError(t, err)
	require.Equal(t, "end", string(cookie), "a cookie saved with them covers them again")
	require.Equal(t, commits+1, l.Commits())
	// Load began a new session: the changes still pending were dropped
	// (no cookie covers them; the provider sends them again).
	require.Equal(t, committed, l.Committed())
	n, err := l.Len()
	require.NoError(t, err)
	require.EqualValues(t, committed, n)
}

func TestContentIsBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db := open(t, path, 0)
	_, err := db.Link("a", people)
	require.NoError(t, err)
	same := people
	same.BaseDN = "OU=People,DC=Example,DC=Com"
	_, err = db.Link("a", same)
	require.NoError(t, err, "DNs compare case-insensitively")
	require.NoError(t, db.Close())

	db = open(t, path, 0)
	defer db.Close()
	for _, tc := range []struct {
		name string
		edit func(*store.Content)
	}{
		{"other base", func(c *store.Content) { c.BaseDN = "dc=example,dc=com" }},
		{"other filter", func(c *store.Content) { c.Filter = "(uid=*)" }},
		{"other scope", func(c *store.Content) { c.Scope = "one" }},
		{"other attributes", func(c *store.Content) { c.Attributes = []string{"cn"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := people
			tc.edit(&c)
			_, err := db.Link("a", c)
			require.ErrorIs(t, err, store.ErrContentMismatch)
			var me *store.MismatchError
			require.ErrorAs(t, err, &me)
			require.Contains(t, err.Error(), path)
		})
	}
	_, err = db.Link("b", store.Content{BaseDN: "dc=other", Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(t, err, "another link in the same file")
	names, err := db.Links()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, names)
}

// After a failed commit no cookie may be saved until a new session loads
// the committed one: the cookie must never cover changes the file lacks.
func TestFailedCommitRefusesCookie(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "r.db"), 2)
	l, err := db.Link("a", people)
	require.NoError(t, err)
	require.NoError(t, db.Close()) // every transaction fails from now on
	require.NoError(t, l.Apply(t.Context(), upsert(uuid.New(), "uid=x", nil)))
	// The batch is full: it commits in the background, where it fails.
	require.NoError(t, l.Apply(t.Context(), upsert(uuid.New(), "uid=y", nil)))
	require.ErrorIs(t, l.Wait(), bolterrors.ErrDatabaseNotOpen)
	require.ErrorIs(t, l.Save([]byte("c9")), store.ErrCommitFailed)
}

func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db := open(t, path, 0)
	defer db.Close()
	_, err := store.Open(path, nil)
	require.ErrorIs(t, err, store.ErrLocked)
}

// entryDNs lists the DNs Each returns, in its order.
func entryDNs(t *testing.T, db *store.DB, link string) []string {
	t.Helper()
	var dns []string
	require.NoError(t, db.Each(link, func(e *ldap.Entry) error {
		dns = append(dns, e.DN)
		return nil
	}))
	return dns
}

// The entryUUID is an entry's identity: entries whose DNs differ only in
// the case of a case-exact value, or only in spelling, are distinct, and
// the DN index lists every one of them once, whatever renames and
// deletions pass between them.
func TestDNIndexNeverHidesAnEntry(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for _, tc := range []struct {
		name    string
		changes []ldapadapter.Change
		want    []string // DNs Each returns
		ordered bool     // in this order
	}{
		{"DNs differing in value case",
			[]ldapadapter.Change{upsert(a, "uid=A,ou=p,dc=t", nil), upsert(b, "uid=a,ou=p,dc=t", nil)},
			[]string{"uid=A,ou=p,dc=t", "uid=a,ou=p,dc=t"}, false},
		{"DNs differing in spelling only",
			[]ldapadapter.Change{upsert(a, "uid=a,ou=p,dc=t", nil), upsert(b, "UID=a, ou=p, dc=t", nil)},
			[]string{"uid=a,ou=p,dc=t", "UID=a, ou=p, dc=t"}, false},
		{"a rename onto another entry's DN",
			[]ldapadapter.Change{upsert(a, "uid=a,ou=p,dc=t", nil), upsert(b, "uid=b,ou=p,dc=t", nil), upsert(b, "uid=a,ou=p,dc=t", nil)},
			[]string{"uid=a,ou=p,dc=t", "uid=a,ou=p,dc=t"}, false},
		{"a rename in case only, then the other deleted",
			[]ldapadapter.Change{upsert(a, "uid=a,ou=p,dc=t", nil), upsert(b, "uid=A,ou=p,dc=t", nil), upsert(a, "uid=A,ou=p,dc=t", nil), {Op: ldapadapter.Delete, UUID: b}},
			[]string{"uid=A,ou=p,dc=t"}, true},
		{"DN order, prefixes first",
			[]ldapadapter.Change{upsert(a, "uid=ab,ou=p,dc=t", nil), upsert(b, "uid=a,ou=p,dc=t", nil), upsert(c, "uid=B,ou=p,dc=t", nil)},
			[]string{"uid=a,ou=p,dc=t", "uid=ab,ou=p,dc=t", "uid=B,ou=p,dc=t"}, true},
		{"not a DN",
			[]ldapadapter.Change{upsert(a, "garbage", nil), upsert(b, "GARBAGE", nil)},
			[]string{"GARBAGE", "garbage"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, filepath.Join(t.TempDir(), "r.db"), 1000)
			defer db.Close()
			l, err := db.Link("a", people)
			require.NoError(t, err)
			for _, c := range tc.changes {
				require.NoError(t, l.Apply(t.Context(), c))
			}
			require.NoError(t, l.Save([]byte("c")))
			n, err := l.Len()
			require.NoError(t, err)
			require.Equal(t, len(tc.want), n)
			got := entryDNs(t, db, "a")
			if tc.ordered {
				require.Equal(t, tc.want, got)
			} else { // DNs equal but for case: in the order of their UUIDs
				require.ElementsMatch(t, tc.want, got)
			}
		})
	}
}

// A base respelled (a space after a comma, the case of a type) is the same
// base: the store accepts the link's copy for it.
func TestContentRespelledBaseIsSame(t *testing.T) {
	stored := store.Content{BaseDN: "ou=p, dc=t", Scope: "sub", Filter: "(objectClass=*)"}
	for _, tc := range []struct {
		name, base string
		same       bool
	}{
		{"no space after the comma", "ou=p,dc=t", true},
		{"spaces everywhere", "ou = p ,  dc = t", true},
		{"case of types and values", "OU=P,DC=T", true},
		{"hex-escaped value", `ou=\70,dc=t`, true},
		{"another base", "ou=q,dc=t", false},
		{"the parent", "dc=t", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.db")
			db := open(t, path, 0)
			_, err := db.Link("a", stored)
			require.NoError(t, err)
			require.NoError(t, db.Close())
			db = open(t, path, 0)
			defer db.Close()
			c := stored
			c.BaseDN = tc.base
			require.Equal(t, tc.same, stored.Same(c))
			_, err = db.Link("a", c)
			if tc.same {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, store.ErrContentMismatch)
			}
		})
	}
}

// WriteAhead runs before every commit (a full batch, Save), and a failing one commits nothing and makes Save refuse
// cookies until the next Load.
func TestWriteAheadPrecedesEveryCommit(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		commit func(t *testing.T, l *store.Link) error
	}{
		{"batch", func(t *testing.T, l *store.Link) error {
			require.NoError(t, l.Apply(ctx, upsert(uuid.New(), "uid=x", nil)))
			return l.Apply(ctx, upsert(uuid.New(), "uid=y", nil)) // the batch is full
		}},
		{"Save", func(t *testing.T, l *store.Link) error {
			require.NoError(t, l.Apply(ctx, upsert(uuid.New(), "uid=x", nil)))
			return l.Save([]byte("c2"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t, filepath.Join(t.TempDir(), "r.db"), 2)
			defer db.Close()
			l, err := db.Link("a", people)
			require.NoError(t, err)
			require.NoError(t, l.Save([]byte("c1")))
			var calls []int64 // Commits() when the hook ran
			l.WriteAhead(func() error { calls = append(calls, l.Commits()); return nil })
			require.NoError(t, tc.commit(t, l))
			require.NoError(t, l.Wait())
			require.Equal(t, []int64{1}, calls, "the hook runs once, before the commit")
			require.EqualValues(t, 2, l.Commits())

			// A failing hook: nothing is committed, and no cookie until Load.
			l.WriteAhead(func() error { return errors.New("disk full") })
			err = tc.commit(t, l)
			require.ErrorIs(t, err, store.ErrWriteAhead)
			require.EqualValues(t, 2, l.Commits())
			n, err := l.Len()
			require.NoError(t, err)
			require.Equal(t, len(entryDNs(t, db, "a")), n)
			l.WriteAhead(nil)
			require.ErrorIs(t, l.Save([]byte("c3")), store.ErrCommitFailed)
			_, err = l.Load()
			require.NoError(t, err)
			require.NoError(t, l.Save([]byte("c3")))
		})
	}
}

// EntryAt finds the entry the copy holds at a DN however it is spelled,
// and nothing when the DN is empty or names two entries (case twins).
func TestEntryAt(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	db := open(t, filepath.Join(t.TempDir(), "r.db"), 1000)
	defer db.Close()
	l, err := db.Link("a", people)
	require.NoError(t, err)
	for _, ch := range []ldapadapter.Change{upsert(a, "ou=p,dc=t", nil), upsert(b, "uid=A,ou=p,dc=t", nil), upsert(c, "uid=a,ou=p,dc=t", nil)} {
		require.NoError(t, l.Apply(t.Context(), ch))
	}
	require.NoError(t, l.Save([]byte("c")))
	for _, tc := range []struct {
		dn   string
		want uuid.UUID
		ok   bool
	}{
		{"ou=p,dc=t", a, true},
		{"OU=p, DC=t", a, true},
		{"uid=a,ou=p,dc=t", uuid.Nil, false}, // two entries there
		{"ou=q,dc=t", uuid.Nil, false},
		{"ou=p", uuid.Nil, false}, // a prefix of a DN is not the DN
	} {
		id, ok, err := l.EntryAt(t.Context(), tc.dn)
		require.NoError(t, err)
		require.Equal(t, tc.ok, ok, tc.dn)
		require.Equal(t, tc.want, id, tc.dn)
	}
}

// A full batch is committed in the background: while its commit runs the
// link takes more changes without waiting, up to ten batches, which then
// go as one transaction. No goroutine outlives the file.
func TestBatchCommitsWhileTheNextFills(t *testing.T) {
	defer goleak.VerifyNone(t)
	release := make(chan struct{})
	var calls atomic.Int32
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), &store.Options{BatchSize: 10, BeforeCommit: func() error {
		if calls.Add(1) == 2 { // the second commit: the first full batch
			<-release
		}
		return nil
	}})
	require.NoError(t, err)
	l, err := db.Link("a", people)
	require.NoError(t, err)
	require.NoError(t, l.Save([]byte("c0"))) // BeforeCommit's first call
	apply := func(n int) {
		for range n {
			require.NoError(t, l.Apply(t.Context(), upsert(uuid.New(), "uid=x,ou=people,dc=example,dc=com", nil)))
		}
	}
	apply(10) // full: its commit starts, and blocks in BeforeCommit
	apply(89) // taken while it is blocked (a wait here would never end)
	require.EqualValues(t, 1, l.Commits(), "only the cookie's commit so far")
	close(release)
	require.NoError(t, l.Wait())
	require.EqualValues(t, 2, l.Commits())
	require.EqualValues(t, 10, l.Committed())
	apply(1) // 90 pending, no commit in the air: they go
	require.NoError(t, l.Wait())
	require.EqualValues(t, 3, l.Commits(), "the grown batch is one transaction")
	require.EqualValues(t, 100, l.Committed())
	require.NoError(t, db.Close())
}

// Known lists the copy as the link applied it, the committed entries with
// the batch in flight and the pending changes replayed over them, without
// committing anything and without waiting for the flight.
func TestKnownWithoutCommitting(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := t.Context()
	release := make(chan struct{})
	var calls atomic.Int32
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), &store.Options{BatchSize: 3, BeforeCommit: func() error {
		if calls.Add(1) == 2 { // the first full batch: held in the air
			<-release
		}
		return nil
	}})
	require.NoError(t, err)
	defer db.Close()
	l, err := db.Link("a", people)
	require.NoError(t, err)
	ids := make([]uuid.UUID, 8)
	for i := range ids {
		ids[i] = uuid.New()
	}
	dn := "uid=x,ou=people,dc=example,dc=com"
	del := func(id uuid.UUID) ldapadapter.Change { return ldapadapter.Change{Op: ldapadapter.Delete, UUID: id} }
	for _, ch := range []ldapadapter.Change{upsert(ids[0], dn, nil), upsert(ids[1], dn, nil)} {
		require.NoError(t, l.Apply(ctx, ch))
	}
	require.NoError(t, l.Save([]byte("c0"))) // committed: 0 and 1
	for _, ch := range []ldapadapter.Change{
		upsert(ids[2], dn, nil), del(ids[0]), upsert(ids[3], dn, nil), // a full batch: in flight, held
		del(ids[2]), upsert(ids[4], dn, nil), upsert(ids[0], dn, nil), del(ids[4]), upsert(ids[5], dn, nil), // pending
	} {
		require.NoError(t, l.Apply(ctx, ch))
	}
	committed := l.Commits()
	got, err := l.Known(ctx) // would never return if it waited for the flight
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{ids[0], ids[1], ids[3], ids[5]}, got)
	require.Equal(t, committed, l.Commits(), "Known commits nothing")
	close(release)
	require.NoError(t, l.Wait())
	got, err = l.Known(ctx) // the flight landed: the same list
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{ids[0], ids[1], ids[3], ids[5]}, got)
	require.NoError(t, l.Save([]byte("c1")))
	got, err = l.Known(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{ids[0], ids[1], ids[3], ids[5]}, got)
	n, err := l.Len()
	require.NoError(t, err)
	require.Equal(t, 4, n)
}
