package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The history keeps the last size transitions, oldest first, holds no more
// than it was given, and keeps what fits across a resize.
func TestHistoryKeepsTheLatest(t *testing.T) {
	for _, tc := range []struct {
		size, added, resized int
		want                 []int // the retry counts kept, standing for transitions
	}{
		{size: 0, added: 5, resized: 0, want: nil},
		{size: 3, added: 2, resized: 3, want: []int{0, 1}},
		{size: 3, added: 7, resized: 3, want: []int{4, 5, 6}},
		{size: 32, added: 3, resized: 32, want: []int{0, 1, 2}},
		{size: 4, added: 9, resized: 2, want: []int{7, 8}},
		{size: 2, added: 5, resized: 4, want: []int{3, 4}},
	} {
		var h history
		h.resize(tc.size)
		for i := range tc.added {
			h.add(Transition{Cause: &RetriesError{Attempts: i}})
		}
		require.LessOrEqual(t, len(h.buf), max(tc.size, 0), "size %d: holds more than it keeps", tc.size)
		h.resize(tc.resized)
		var got []int
		for _, tr := range h.snapshot() {
			got = append(got, tr.Cause.(*RetriesError).Attempts)
		}
		require.Equal(t, tc.want, got, "size %d, %d added, resized to %d", tc.size, tc.added, tc.resized)
	}
}
