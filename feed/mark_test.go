package feed_test

import (
	"bytes"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/feed/feedtest"
)

// Since lists a link's records written past a mark SyncMark gave, buffered
// ones included, and nothing for a mark that is not one.
func TestMarks(t *testing.T) {
	w, err := feed.New(feedtest.NewFile(nil), feed.WithClock(clock))
	require.NoError(t, err)
	a1, a2, a3, b1 := change("a1"), change("a2"), change("a3"), change("b1")
	require.NoError(t, w.Write("a", a1, nil))
	mark, err := w.SyncMark("a")
	require.NoError(t, err)
	require.NoError(t, w.Write("a", a2, nil))
	require.NoError(t, w.Write("b", b1, nil))
	require.NoError(t, w.Sync())
	require.NoError(t, w.Write("a", a3, nil)) // still buffered

	for _, tc := range []struct {
		name string
		link string
		mark []byte
		want []uuid.UUID
	}{
		{"past the mark", "a", mark, []uuid.UUID{a2.UUID, a3.UUID}},
		{"another link", "b", mark, []uuid.UUID{b1.UUID}},
		{"no mark", "a", nil, nil},
		{"not a mark", "a", []byte("x"), nil},
		{"past the end", "a", []byte("999999"), nil},
		{"from the start", "a", []byte("0"), []uuid.UUID{a1.UUID, a2.UUID, a3.UUID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := w.Since(tc.link, tc.mark)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids)
		})
	}
	s := feed.NewStream(&bytes.Buffer{})
	defer s.Close()
	m, err := s.SyncMark("a")
	require.NoError(t, err)
	require.Nil(t, m)
	_, err = s.Since("a", []byte("0"))
	require.ErrorIs(t, err, feed.ErrNoMark)
}
