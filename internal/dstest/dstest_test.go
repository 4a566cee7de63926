package dstest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/internal/slapdtest"
)

func TestStartWriteSnapshot(t *testing.T) {
	s := Start(t)
	require.NoError(t, s.Write(6))
	got, err := s.Snapshot(t.Context(), slapdtest.PeopleDN)
	require.NoError(t, err)
	require.Len(t, got, 1+3, "ou=people and three adds (the other changes modify or rename)")
	s.Kill()
	s.Launch()
	again, err := s.Snapshot(t.Context(), slapdtest.PeopleDN)
	require.NoError(t, err)
	require.Equal(t, got, again, "a killed server comes back on its data")
}
