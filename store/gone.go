package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A store file removed or replaced under a running daemon (an rm, a
// restore from backup) keeps being written through the open descriptor,
// and all of it is lost when the process exits, while a second daemon may
// already be writing a new file at the same path. So every commit first
// checks that the path still names the file that was opened: one stat(2),
// next to the two fdatasyncs of a bbolt commit.

// Check says, wrapping ErrGone, when d's path no longer names the file d
// has open: it was removed, renamed away, or replaced by another file.
// Another failure to stat the path is returned as it is. Commits fail
// with it too (see Link), so nothing more is committed to a file that
// will be lost.
func (d *DB) Check() error {
	now, err := os.Stat(d.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store %s: %w: no file at the path any more", d.path, ErrGone)
	case err != nil:
		return fmt.Errorf("store %s: %w", d.path, err)
	case !os.SameFile(now, d.opened):
		return fmt.Errorf("store %s: %w: the path names another file now", d.path, ErrGone)
	}
	return nil
}

// Key is one name for the store file at path however path spells it
// (shared.db, ./shared.db, dir/../shared.db, a symbolic link to it, a path
// through a linked directory), so that a process can keep one DB per file:
// bbolt locks the file, and a second Open of it would wait and fail. It is
// the absolute path with every symbolic link resolved; when the file does
// not exist yet, its directory's links are resolved and its name kept.
// Hard links are different names for the same file: Key keeps them apart.
func Key(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}
