package ldapadapter_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/ldapadapter"
)

func TestFileCookieStore(t *testing.T) {
	dir := t.TempDir()
	s := ldapadapter.FileCookieStore{Path: filepath.Join(dir, "cookie")}
	c, err := s.Load()
	require.NoError(t, err)
	require.Nil(t, c, "no file: no cookie")
	require.NoError(t, s.Save([]byte("rid=001,csn=1")))
	require.NoError(t, s.Save([]byte("rid=001,csn=2")))
	c, err = s.Load()
	require.NoError(t, err)
	require.Equal(t, "rid=001,csn=2", string(c))
	fi, err := os.Stat(filepath.Join(dir, "cookie"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the cookie file is its owner's alone")
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, left, 1, "no temporary files left behind")

	bad := ldapadapter.FileCookieStore{Path: filepath.Join(dir, "missing", "cookie")}
	require.Error(t, bad.Save([]byte("x")), "a directory that does not exist is an error, not a panic")
}

func TestMemoryCookieStoreCopies(t *testing.T) {
	var s ldapadapter.MemoryCookieStore
	b := []byte("abc")
	require.NoError(t, s.Save(b))
	b[0] = 'X'
	c, _ := s.Load()
	require.Equal(t, "abc", string(c))
}
