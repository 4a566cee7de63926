package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/feed"
	"github.com/replink/replink/store"
)

// storeFile is one open store, under the key every spelling of its path
// shares.
type storeFile struct {
	db  *store.DB
	key string
	// created: the file did not exist before; a rejected reload that
	// opened it removes it.
	created bool
}

// storeKey names a store file however its path is spelled ("shared.db",
// "./shared.db", a symlink), so that two links naming it share one handle
// instead of fighting over its lock.
func storeKey(path string) (string, error) { return store.Key(path) }

func openStore(path, key string) (*storeFile, error) {
	_, err := os.Stat(key)
	created := errors.Is(err, os.ErrNotExist)
	db, err := store.Open(path, nil)
	if err != nil {
		return nil, err
	}
	return &storeFile{db: db, key: key, created: created}, nil
}

// ErrStoreGone is a link's cause when its store file was deleted or
// replaced while the mirror held it: whatever it commits from then on
// is lost with the old file.
var ErrStoreGone = errors.New("the store file was deleted or replaced under the running mirror")

// check says whether the store's file is still the one opened; an error
// other than store.ErrGone (a stat that failed) is not a verdict.
func (s *storeFile) check() error {
	if err := s.db.Check(); errors.Is(err, store.ErrGone) {
		return fmt.Errorf("%w: %w", ErrStoreGone, err)
	}
	return nil
}

// watchStores checks every store each StoreCheckInterval until done, and
// fails the links of a store that went away.
func (m *Mirror) watchStores(done <-chan struct{}) {
	if m.check < 0 {
		return
	}
	t := time.NewTicker(m.check)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			m.checkStores()
		}
	}
}

// checkStores fails, for good, every link whose store went away: it is
// stopped, its state reads Failed with the cause, and /healthz says 503.
func (m *Mirror) checkStores() {
	m.mu.Lock()
	var victims []*link
	var causes []error
	for _, s := range m.stores {
		err := s.check()
		if err == nil {
			continue
		}
		for _, l := range m.links {
			if l.key == s.key && l.failure() == nil {
				victims, causes = append(victims, l), append(causes, err)
			}
		}
	}
	m.mu.Unlock()
	for i, l := range victims {
		m.failLink(l, causes[i])
	}
}

// failLink stops l and keeps it Failed with cause until it is replaced.
func (m *Mirror) failLink(l *link, cause error) {
	l.mu.Lock()
	if l.fault != nil {
		l.mu.Unlock()
		return
	}
	// Logged before the state shows it, so whoever sees Failed finds why.
	m.log.Error("link failed: its store is unusable; restore the file and restart", "link", l.link.Name(), "cause", cause)
	l.fault = cause
	l.mu.Unlock()
	m.metrics.setState(l.link.Name(), replink.Failed)
	ctx, cancel := context.WithTimeout(context.Background(), stopBound(l))
	defer cancel()
	l.link.Stop(ctx)
}

func stopBound(l *link) time.Duration {
	if d := l.link.Config().LDAP.StopTimeout; d > 0 {
		return 2 * d
	}
	return 6 * time.Second
}

// readerGone says whether a feed error means nobody reads it any more.
func readerGone(err error) bool {
	return errors.Is(err, feed.ErrReaderGone) || errors.Is(err, syscall.EPIPE)
}
