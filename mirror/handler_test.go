package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/feed/feedtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
	"github.com/replink/replink/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var people = store.Content{BaseDN: "ou=p,dc=t", Scope: "sub", Filter: "(objectClass=*)"}

// newHandler makes a handler on a fresh store (batches of batch changes)
// and a feed on f.
func newHandler(t *testing.T, batch int, f *feedtest.File) *mirror.Handler {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), &store.Options{BatchSize: batch})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	l, err := db.Link("people", people)
	require.NoError(t, err)
	w, err := feed.New(f)
	require.NoError(t, err)
	return mirror.NewHandler(l, w, nil)
}

func upsert(id uuid.UUID) ldapadapter.Change {
	dn := "uid=" + id.String() + ",ou=p,dc=t"
	return ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: dn, Entry: ldap.NewEntry(dn, map[string][]string{"cn": {"x"}})}
}

// The handler is what the adapter sees of the daemon's link: if it stops
// being a TransactionalCookieStore, the adapter saves an extra cookie per
// batch and a 389-ds link reloads in full after a crash.
func TestHandlerIsTransactionalCookieStore(t *testing.T) {
	h := newHandler(t, 10, feedtest.NewFile(nil))
	var adapterSees ldapadapter.Handler = h
	_, own := adapterSees.(ldapadapter.CookieStore)
	require.True(t, own, "the handler keeps its own cookie")
	_, tx := adapterSees.(ldapadapter.TransactionalCookieStore)
	require.True(t, tx, "and commits it with the changes")
}

// The feed is written ahead of the store: whenever the store commits (a
// full batch, a cookie), every change it holds
// already has its line fsynced in the feed, so a kill -9 at any instant
// leaves no change in the store that the feed lacks.
func TestFeedIsWrittenAheadOfEveryCommit(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		step func(t *testing.T, h *mirror.Handler, ids []uuid.UUID)
	}{
		{"batch commit in Apply", func(t *testing.T, h *mirror.Handler, ids []uuid.UUID) {
			for _, id := range ids[:3] { // the third fills the batch
				require.NoError(t, h.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Delete, UUID: id}))
			}
		}},
		{"cookie commit in Save", func(t *testing.T, h *mirror.Handler, ids []uuid.UUID) {
			require.NoError(t, h.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Delete, UUID: ids[0]}))
			require.NoError(t, h.Save([]byte("bind\nc2")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feedtest.NewFile(nil)
			h := newHandler(t, 3, f)
			durable := 0 // feed lines made durable so far
			f.OnSync(func(b []byte) {
				require.LessOrEqual(t, h.Committed(), int64(durable), "a commit came before this sync of its lines")
				durable = bytes.Count(b, []byte{'\n'})
			})
			ids := []uuid.UUID{uuid.New(), uuid.New()}
			for _, id := range ids {
				require.NoError(t, h.Apply(ctx, upsert(id)))
			}
			require.NoError(t, h.Save([]byte("bind\nc1")))
			commits := h.Commits()
			tc.step(t, h, append(ids, uuid.New()))
			require.NoError(t, h.Wait()) // a full batch commits in the background
			require.Greater(t, h.Commits(), commits, "the step committed")
			require.Equal(t, h.Committed(), int64(durable), "every committed change is in the durable feed")

			// What a power loss now leaves of the feed says every deletion
			// the store committed.
			deleted := map[uuid.UUID]bool{}
			require.NoError(t, feed.Replay(bytes.NewReader(f.Durable()), func(r feed.Record) error {
				deleted[r.UUID] = r.Op == ldapadapter.Delete
				return nil
			}))
			known, err := h.Known(ctx)
			require.NoError(t, err)
			for _, id := range ids {
				require.Equal(t, !deleted[id], containsID(known, id), "entry %s: store and durable feed agree", id)
			}
		})
	}
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// A feed that cannot be made durable stops the commit: the store keeps the
// cookie it had and refuses another until the link loads it again.
func TestFeedFailureStopsTheCommit(t *testing.T) {
	ctx := context.Background()
	f := feedtest.NewFile(nil)
	h := newHandler(t, 100, f)
	require.NoError(t, h.Apply(ctx, upsert(uuid.New())))
	require.NoError(t, h.Save([]byte("bind\nc1")))
	f.FailSync(errors.New("EIO"))
	require.NoError(t, h.Apply(ctx, upsert(uuid.New())))
	require.ErrorIs(t, h.Save([]byte("bind\nc2")), store.ErrWriteAhead)
	require.ErrorIs(t, h.Save([]byte("bind\nc2")), store.ErrCommitFailed)
	n, err := h.Len()
	require.NoError(t, err)
	require.Equal(t, 1, n, "the second change was not committed")
	// A feed that cannot be repaired cannot start a session either: its
	// lines past the mark could not be restated.
	_, err = h.Load()
	require.ErrorIs(t, err, feed.ErrFailed)
	f.FailSync(nil)
	cookie, err := h.Load()
	require.NoError(t, err)
	require.Equal(t, "bind\nc1", string(cookie))
}

// The feed's cookie field is the provider's position last committed.
func TestFeedCarriesThePosition(t *testing.T) {
	ctx := context.Background()
	f := feedtest.NewFile(nil)
	h := newHandler(t, 100, f)
	require.Equal(t, time.Duration(-1), h.CookieAge())
	require.NoError(t, h.Apply(ctx, upsert(uuid.New())))
	require.NoError(t, h.Save([]byte("bind\nrid=000,csn=1")))
	require.NoError(t, h.Apply(ctx, upsert(uuid.New())))
	require.NoError(t, h.Save([]byte("bind\nrid=000,csn=2")))
	var cookies []string
	require.NoError(t, feed.Replay(bytes.NewReader(f.Durable()), func(r feed.Record) error {
		cookies = append(cookies, string(r.Cookie))
		return nil
	}))
	require.Equal(t, []string{"", "rid=000,csn=1"}, cookies)
	require.EqualValues(t, 2, h.Applied())
	require.GreaterOrEqual(t, h.CookieAge(), time.Duration(0))
}

// The feed never keeps a change the store did not take: the lines of a
// session's uncommitted changes (its connection lost before a cookie
// covered them, or a crash between the feed's fsync and the commit) are
// restated from the store when the next session starts, so the feed
// replayed from empty equals the store.
func TestUncommittedFeedLinesAreRestated(t *testing.T) {
	ctx := context.Background()
	kept, phantom, changed := uuid.New(), uuid.New(), uuid.New()
	f := feedtest.NewFile(nil)
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), nil)
	require.NoError(t, err)
	defer db.Close()
	l, err := db.Link("people", people)
	require.NoError(t, err)
	w, err := feed.New(f)
	require.NoError(t, err)
	h := mirror.NewHandler(l, w, nil)
	_, err = h.Load() // the first session starts the marks
	require.NoError(t, err)
	require.NoError(t, h.Apply(ctx, upsert(kept)))
	require.NoError(t, h.Apply(ctx, upsert(changed)))
	require.NoError(t, h.Save([]byte("bind\nc1")))

	// A session applies two changes and is lost before any commit.
	require.NoError(t, h.Apply(ctx, upsert(phantom)))
	c := upsert(changed)
	c.Entry.Attributes[0].Values, c.Entry.Attributes[0].ByteValues = []string{"y"}, [][]byte{[]byte("y")}
	require.NoError(t, h.Apply(ctx, c))
	require.NoError(t, w.Sync()) // as another link's commit, or the fsync before a crash, would
	cookie, err := h.Load()
	require.NoError(t, err)
	require.Equal(t, "bind\nc1", string(cookie))

	state := map[uuid.UUID]string{}
	require.NoError(t, feed.Replay(bytes.NewReader(f.Written()), func(r feed.Record) error {
		if r.Op == ldapadapter.Delete {
			delete(state, r.UUID)
		} else {
			state[r.UUID] = string(r.Attributes["cn"][0])
		}
		return nil
	}))
	require.Equal(t, map[uuid.UUID]string{kept: "x", changed: "x"}, state, "the feed replayed must equal the store")
	_, err = h.Load() // nothing past the new mark: nothing restated twice
	require.NoError(t, err)
	n := bytes.Count(f.Written(), []byte{'\n'})
	_, err = h.Load()
	require.NoError(t, err)
	require.Equal(t, n, bytes.Count(f.Written(), []byte{'\n'}))
}
