package ldapadapter

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// CookieStore keeps a link's sync cookie across restarts. The link saves a
// cookie only after every change that came before it has been applied, so a
// restart from the stored cookie never skips a change.
type CookieStore interface {
	Load() ([]byte, error) // nil, nil when there is none
	Save(cookie []byte) error
}

// TransactionalCookieStore is a CookieStore that commits each cookie in
// the same transaction as the changes applied before it, and keeps no
// change its stored cookie does not cover (a commit without a cookie
// erases the cookie), as store.Link does. With any other store the link
// marks the stored cookie before the first change past it, so that after a
// crash it knows the copy may be ahead of the cookie; from a provider that
// folds an entry added and deleted since a cookie into nothing (389-ds),
// it then reloads in full rather than keep that entry.
type TransactionalCookieStore interface {
	CookieStore
	// CommitsWithChanges marks the store; it is never called.
	CommitsWithChanges()
}

// FileCookieStore keeps the cookie in one file, replaced atomically (write a
// temporary file, fsync, rename, fsync the directory): after a crash the
// file holds the old cookie or the new one, never a torn one.
type FileCookieStore struct {
	Path string
}

func (f FileCookieStore) Load() ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (f FileCookieStore) Save(cookie []byte) error {
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, filepath.Base(f.Path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(cookie); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// MemoryCookieStore keeps the cookie in memory; it survives a link's
// restart within one process, not the process.
type MemoryCookieStore struct {
	mu     sync.Mutex
	cookie []byte
}

func (m *MemoryCookieStore) Load() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.cookie...), nil
}

func (m *MemoryCookieStore) Save(c []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cookie = append([]byte(nil), c...)
	return nil
}
