package fsm

import "sync"

// history is a ring of the most recent transitions, readable from any
// goroutine while the owner appends. It grows as transitions come, up to
// its size: a link that connected once and persists holds three, not a
// full ring (about 2 KiB per link at the default 32).
type history struct {
	mu   sync.Mutex
	buf  []Transition
	size int
	next int
	full bool
}

func (h *history) resize(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.snapshotLocked()
	h.buf, h.size, h.next, h.full = nil, max(n, 0), 0, false
	for _, t := range old {
		h.addLocked(t)
	}
}

func (h *history) add(t Transition) {
	h.mu.Lock()
	h.addLocked(t)
	h.mu.Unlock()
}

func (h *history) addLocked(t Transition) {
	if h.size == 0 {
		return
	}
	if len(h.buf) < h.size {
		h.buf = append(h.buf, t)
		return
	}
	h.buf[h.next] = t
	h.next = (h.next + 1) % len(h.buf)
	h.full = true
}

func (h *history) snapshot() []Transition {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked()
}

func (h *history) snapshotLocked() []Transition {
	out := make([]Transition, 0, len(h.buf))
	if h.full {
		out = append(out, h.buf[h.next:]...)
		return append(out, h.buf[:h.next]...)
	}
	return append(out, h.buf...)
}
