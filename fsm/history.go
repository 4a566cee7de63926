package fsm

import "sync"

// history is a ring of the most recent transitions, readable from any
// goroutine while the owner appends.
type history struct {
	mu   sync.Mutex
	buf  []Transition
	next int
	full bool
}

func (h *history) resize(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.snapshotLocked()
	h.buf, h.next, h.full = nil, 0, false
	if n > 0 {
		h.buf = make([]Transition, 0, n)
	}
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
	if cap(h.buf) == 0 {
		return
	}
	if len(h.buf) < cap(h.buf) {
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
