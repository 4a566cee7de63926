package feed

import (
	"errors"
	"io"
	"strconv"

	"github.com/google/uuid"
)

// A Writer is its store's write-ahead log: each commit of a link comes
// after the Sync of the lines its changes were written to. A commit that
// never comes (a crash between the two, a session lost before its changes
// were covered by a cookie) leaves those lines in the feed for changes the
// store never took; if the provider then folds them away (an entry added
// and deleted meanwhile is never named again), nothing would ever retract
// them. So the store commits, with each link's changes, the mark SyncMark
// returns, and at the start of each session the link's lines past its mark
// (Since) are restated from the store.

// ErrNoMark is returned by Since for a stream: what it wrote cannot be read
// back.
var ErrNoMark = errors.New("a stream feed has no marks")

// SyncMark is SyncFor that also returns how far the file is durable, as
// the mark to commit with link's changes (store.Link.WriteAheadMarked). A
// stream's mark is nil.
func (w *Writer) SyncMark(link string) ([]byte, error) {
	if err := w.SyncFor(link); err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stream != nil {
		return nil, nil
	}
	return strconv.AppendInt(nil, w.durable, 10), nil
}

// Since returns the UUIDs of link's records past mark, in the order they
// were written, after flushing what is buffered. A nil mark (a store that
// never committed one) or one that is not a mark has nothing past it, and
// so does a file cut below the mark (replaced by an operator, say).
func (w *Writer) Since(link string, mark []byte) ([]uuid.UUID, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stream != nil {
		return nil, ErrNoMark
	}
	if err := w.usableLocked(); err != nil {
		return nil, err
	}
	if err := w.buf.Flush(); err != nil {
		return nil, w.fail(err)
	}
	from, err := strconv.ParseInt(string(mark), 10, 64)
	if err != nil || from < 0 || from >= w.end {
		return nil, nil
	}
	var ids []uuid.UUID
	err = Replay(io.NewSectionReader(w.file, from, w.end-from), func(r Record) error {
		if r.Link == link {
			ids = append(ids, r.UUID)
		}
		return nil
	})
	return ids, err
}
