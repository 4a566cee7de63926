package store_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/store"
)

// A store file removed or replaced under a running process is noticed:
// Check says so, wrapping ErrGone with the path, and the next commit
// fails with it instead of writing to a file that is lost at exit.
func TestCheckNoticesTheFileGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, path string)
		gone bool
	}{
		{"untouched", func(*testing.T, string) {}, false},
		{"removed", func(t *testing.T, path string) { require.NoError(t, os.Remove(path)) }, true},
		{"renamed away", func(t *testing.T, path string) { require.NoError(t, os.Rename(path, path+".old")) }, true},
		{"replaced by a new file", func(t *testing.T, path string) {
			require.NoError(t, os.Remove(path))
			db, err := store.Open(path, nil) // the second daemon
			require.NoError(t, err)
			require.NoError(t, db.Close())
		}, true},
		{"another file renamed over it", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), "other.db")
			require.NoError(t, os.WriteFile(other, nil, 0o600))
			require.NoError(t, os.Rename(other, path))
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.db")
			db, err := store.Open(path, nil)
			require.NoError(t, err)
			defer db.Close()
			l, err := db.Link("p", people)
			require.NoError(t, err)
			require.NoError(t, l.Apply(t.Context(), upsert(uuid.New(), "uid=a,ou=people,dc=example,dc=com", map[string][]string{"uid": {"a"}})))
			require.NoError(t, l.Save([]byte("c1")))

			tc.do(t, path)
			require.NoError(t, l.Apply(t.Context(), upsert(uuid.New(), "uid=b,ou=people,dc=example,dc=com", map[string][]string{"uid": {"b"}})))
			saved := l.Save([]byte("c2"))
			if !tc.gone {
				require.NoError(t, db.Check())
				require.NoError(t, saved)
				require.EqualValues(t, 2, l.Commits())
				return
			}
			require.ErrorIs(t, db.Check(), store.ErrGone)
			require.ErrorContains(t, db.Check(), path)
			require.ErrorIs(t, saved, store.ErrGone, "the commit is refused")
			require.EqualValues(t, 1, l.Commits())
		})
	}
}

// A store opened through a symbolic link is the file the link named then:
// pointing the link elsewhere is noticed like a replaced file.
func TestCheckThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real.db"), filepath.Join(dir, "link.db")
	require.NoError(t, os.Symlink(real, link))
	db, err := store.Open(link, nil)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.Check())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "elsewhere.db"), nil, 0o600))
	require.NoError(t, os.Remove(link))
	require.NoError(t, os.Symlink(filepath.Join(dir, "elsewhere.db"), link))
	require.ErrorIs(t, db.Check(), store.ErrGone)
}

// Key gives one name to one file however it is spelled, whether it exists
// yet or not, and different names to different files.
func TestKey(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "linkdir")))
	t.Chdir(dir)

	for _, exists := range []bool{false, true} {
		want := filepath.Join(dir, "sub", "shared.db")
		if exists {
			db, err := store.Open(want, nil)
			require.NoError(t, err)
			require.NoError(t, db.Close())
			require.NoError(t, os.Symlink(want, filepath.Join(dir, "alias.db")))
		}
		spellings := []string{"sub/shared.db", "./sub/shared.db", "sub/../sub/shared.db", want, "linkdir/shared.db", "sub//shared.db"}
		if exists {
			spellings = append(spellings, "alias.db")
		}
		for _, p := range spellings {
			got, err := store.Key(p)
			require.NoError(t, err, p)
			require.Equal(t, want, got, "exists %v: %s", exists, p)
		}
		other, err := store.Key("sub/other.db")
		require.NoError(t, err)
		require.NotEqual(t, want, other)
	}
}
