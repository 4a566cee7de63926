package feed

import "fmt"

// A write that fails (ENOSPC, EIO) may leave part of a line in the file,
// and a failed fsync leaves the kernel free to have dropped pages it had
// accepted, while a later read may still show them. Either way the only
// bytes a Writer trusts are those up to durable, the end of the last whole
// line an fsync confirmed. So after a failure the Writer writes nothing
// until it has cut the file back to durable and fsynced the cut; the lines
// cut are those of changes no commit covered yet, which come again once
// their links learn of it (Writer.SyncFor).

// offsetWriter is the file under a Writer's buffer: it counts what the
// file accepted, so the Writer knows where its lines end.
type offsetWriter struct{ w *Writer }

func (o offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.file.Write(p)
	o.w.end += int64(n)
	return n, err
}

// fail records a failed write or fsync: every link with lines not yet
// durable loses them at the repair, which the next call makes.
func (w *Writer) fail(err error) error {
	w.broken = err
	for link := range w.unsynced {
		w.lost[link] = struct{}{}
	}
	clear(w.unsynced)
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// repairLocked cuts the file back to durable after a failure, fsyncs the
// cut and empties the buffer. If it cannot, the Writer stays broken and
// the next call tries again: a disk that was full works again once space
// is freed, without a restart.
func (w *Writer) repairLocked() error {
	if w.broken == nil {
		return nil
	}
	if err := w.file.Truncate(w.durable); err != nil {
		return fmt.Errorf("%w: cut back to the last durable line: %w (after: %w)", ErrFailed, err, w.broken)
	}
	if err := w.file.Sync(); err != nil {
		return fmt.Errorf("%w: cut back to the last durable line: %w (after: %w)", ErrFailed, err, w.broken)
	}
	w.log.Warn("change feed: writing again after a failed write or fsync; cut the lines not known durable, their changes come again",
		"file", w.name, "bytes", w.end-w.durable, "cause", w.broken)
	w.buf.Reset(offsetWriter{w})
	w.end = w.durable
	w.dirty = false
	w.broken = nil
	return nil
}
