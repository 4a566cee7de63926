package ldapadapter_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/sambatest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// dirSyncRig is a Samba AD DC and a DirSync link of its domain into a
// real store.
type dirSyncRig struct {
	t    *testing.T
	srv  *sambatest.Server
	db   *store.DB
	copy *store.Link
	path string
	link *ldapadapter.Link
}

func (r *dirSyncRig) open() {
	copy, err := r.db.Link("ad", store.Content{BaseDN: sambatest.BaseDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(r.t, err)
	r.copy = copy
	cfg := linkConfig("ad", r.srv.URL(), copy, nil)
	cfg.LDAP.BindDN, cfg.LDAP.Password, cfg.LDAP.BaseDN = sambatest.AdminDN, sambatest.AdminPW, sambatest.BaseDN
	cfg.LDAP.Mode, cfg.LDAP.AllowCleartextPassword = ldapadapter.ModeDirSync, true // a namespace of the test
	cfg.LDAP.DirSyncPoll = 2 * time.Second
	cfg.Machine.Backoff.Initial, cfg.Machine.Backoff.Max = 200*time.Millisecond, time.Second
	if testing.Verbose() {
		cfg.LDAP.Logger = slog.New(slog.NewTextHandler(testWriter{r.t}, nil))
	}
	r.link = newLink(r.t, cfg, nil)
}

func (r *dirSyncRig) inSync(ctx context.Context, within time.Duration) {
	r.t.Helper()
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = realtarget.SambaDiff(ctx, r.srv, r.copy); err == nil {
			return
		}
	}
	r.t.Fatalf("the copy differs from the DC: %v", err)
}

// TestDirSyncAgainstSamba mirrors a real Samba AD DC over DirSync into a
// real store, through adds, modifies, renames, moves, deletes and group
// member changes, a consumer crash, a DC restart and a refused cookie,
// comparing the copy with the DC by objectGUID after each.
func TestDirSyncAgainstSamba(t *testing.T) {
	if testing.Short() {
		t.Skip("real Samba: not in -short")
	}
	sambatest.Require(t)
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv := sambatest.Start(t)
	path := t.TempDir() + "/r.db"
	db, err := store.Open(path, nil)
	require.NoError(t, err)
	r := &dirSyncRig{t: t, srv: srv, db: db, path: path}
	t.Cleanup(func() { r.db.Close() })
	must := func(s string, err error) string { t.Helper(); require.NoError(t, err); return s }

	alice := must(srv.CreateUser("alice", "Alice-Pw-123!"))
	bob := must(srv.CreateUser("bob", "Bob-Pw-123!"))
	group := must(srv.CreateGroup("staff"))
	require.NoError(t, srv.AddToGroup(group, alice))
	ou := must(srv.CreateOU("moved"))

	r.open()
	require.NoError(t, r.link.Start(ctx))
	_, err = r.link.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	require.Equal(t, ldapadapter.ProtocolDirSync, r.link.Protocol())
	r.inSync(ctx, 10*time.Second)

	t.Run("changes", func(t *testing.T) {
		carol := must(srv.CreateUser("carol", "Carol-Pw-123!"))
		require.NoError(t, srv.ModifyAttr(alice, "description", "first"))
		require.NoError(t, srv.AddToGroup(group, bob))
		require.NoError(t, srv.AddToGroup(group, carol))
		r.inSync(ctx, 10*time.Second)
		require.NoError(t, srv.RemoveFromGroup(group, alice))
		require.NoError(t, srv.ModifyAttr(alice, "description"))
		r.inSync(ctx, 10*time.Second)
		dave := must(srv.CreateUser("dave", "Dave-Pw-123!"))
		dave = must(srv.Rename(dave, "CN=david"))
		dave = must(srv.Move(dave, ou))
		r.inSync(ctx, 10*time.Second)
		require.NoError(t, srv.DeleteUser(dave))
		r.inSync(ctx, 10*time.Second) // Samba notifies no delete: the poll timer finds it
	})

	t.Run("consumer killed", func(t *testing.T) {
		// The process dies: the store closes under the link, losing what
		// it had not committed; a new process opens it with a new link.
		require.NoError(t, r.db.Close())
		r.link.Close()
		require.NoError(t, srv.ModifyAttr(bob, "description", "while away"))
		erin := must(srv.CreateUser("erin", "Erin-Pw-123!"))
		require.NoError(t, srv.AddToGroup(group, erin))
		db, err := store.Open(r.path, nil)
		require.NoError(t, err)
		r.db = db
		r.open()
		require.NoError(t, r.link.Start(ctx))
		_, err = r.link.WaitFor(ctx, replink.Persisting)
		require.NoError(t, err)
		r.inSync(ctx, 10*time.Second)
	})

	t.Run("DC restarted", func(t *testing.T) {
		lost := make(chan struct{}, 1)
		cancelWatch := r.link.Watch(func(tr fsm.Transition) {
			if tr.From == replink.Persisting {
				select {
				case lost <- struct{}{}:
				default:
				}
			}
		})
		defer cancelWatch()
		srv.Stop()
		select {
		case <-lost:
		case <-time.After(15 * time.Second):
			t.Fatal("the link did not notice the DC going away")
		}
		srv.Launch()
		must(srv.CreateUser("frank", "Frank-Pw-123!"))
		require.NoError(t, srv.ModifyAttr(alice, "description", "after restart"))
		r.inSync(ctx, 30*time.Second)
		_, err := r.link.WaitFor(ctx, replink.Persisting)
		require.NoError(t, err)
	})

	t.Run("cookie refused", func(t *testing.T) {
		// A cookie the DC cannot use, over a copy that holds an object the
		// DC never had: the full resync must prune it.
		// The link stops first, so that the cookie covering its copy is
		// committed (a copy closed under a running link may hold changes
		// past its cookie, and then has none to garble).
		r.link.Close()
		require.NoError(t, r.db.Close())
		db, err := store.Open(r.path, nil)
		require.NoError(t, err)
		r.db = db
		r.open()
		r.link.Close()
		stored, err := r.copy.Load() // a new session: the ghost comes after
		require.NoError(t, err)
		require.NotEmpty(t, stored)
		ghost := uuid.New()
		require.NoError(t, r.copy.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Upsert, UUID: ghost,
			DN: "CN=ghost," + sambatest.UsersDN, Entry: &ldap.Entry{DN: "CN=ghost," + sambatest.UsersDN}}))
		require.NoError(t, r.copy.Save(garble(stored)))
		r.open()
		require.NoError(t, r.link.Start(ctx))
		r.inSync(ctx, 30*time.Second)
		_, err = r.link.WaitFor(ctx, replink.Persisting)
		require.NoError(t, err)
	})
	t.Run("cookie from another DC", func(t *testing.T) {
		// Another DC of the same realm, provisioned apart: it would accept
		// the cookie and answer with everything, pruning nothing. The link
		// sees the issuer in the cookie and resynchronizes in full; the
		// prune (every objectGUID differs) is held by the deletion guard
		// until approved.
		other := sambatest.Start(t, sambatest.WithFreshDomain)
		cfg := r.link.Config()
		cfg.LDAP.URL, cfg.LDAP.URLs = other.URL(), nil
		require.NoError(t, r.link.Reconfigure(ctx, cfg))
		_, err := r.link.WaitFor(ctx, replink.Failed)
		require.NoError(t, err)
		require.NotNil(t, r.link.HeldDeletions())
		require.NoError(t, r.link.ApproveDeletions(ctx))
		r.srv = other
		r.inSync(ctx, 30*time.Second)
		r.srv = srv
	})
	r.link.Close()

	t.Run("errors name the fix", func(t *testing.T) {
		reader := must(srv.CreateUser("reader", "Reader-Pw-123!"))
		for _, c := range []struct {
			name, base, bind, pw, want string
		}{
			{"base not a naming context", sambatest.UsersDN, sambatest.AdminDN, sambatest.AdminPW, "not a naming-context root"},
			{"no Replicating Directory Changes", sambatest.BaseDN, reader, "Reader-Pw-123!", sambatest.GetChangesRight},
		} {
			cfg := linkConfig("bad", srv.URL(), ldapadapter.NewMemoryStore(), nil)
			cfg.LDAP.BindDN, cfg.LDAP.Password, cfg.LDAP.BaseDN = c.bind, c.pw, c.base
			cfg.LDAP.Mode, cfg.LDAP.AllowCleartextPassword = ldapadapter.ModeDirSync, true
			causes := make(chan error, 16)
			l := newLink(t, cfg, func(tr fsm.Transition) {
				if tr.Cause != nil {
					select {
					case causes <- tr.Cause:
					default:
					}
				}
			})
			require.NoError(t, l.Start(ctx))
			select {
			case err := <-causes:
				require.ErrorIs(t, err, ldapadapter.ErrDirSyncRefused, c.name)
				require.ErrorContains(t, err, c.want, c.name)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no error", c.name)
			}
			l.Close()
		}
	})
}

// garble replaces the DirSync blob of a stored cookie with bytes the DC
// cannot unmarshal, keeping its framing (the content digest the link
// binds it to, up to the first newline).
func garble(stored []byte) []byte {
	i := slices.Index(stored, '\n')
	return append(slices.Clone(stored[:i+1]), []byte("not a DirSync cookie")...)
}
