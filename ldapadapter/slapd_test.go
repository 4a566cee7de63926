package ldapadapter_test

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/conformance"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
)

// realTimeQuiet caps "quiet" steps: minutes of virtual silence become
// seconds of real silence.
const realTimeQuiet = 12 * time.Second

// TestScenariosAgainstSlapd runs every conformance scenario against a real
// OpenLDAP slapd with real faults, in real time.
func TestScenariosAgainstSlapd(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time scenarios against slapd: not in -short")
	}
	slapdtest.Require(t)
	files, err := filepath.Glob("../testdata/conformance/*.txt")
	require.NoError(t, err)
	for _, f := range files {
		s, err := conformance.ParseFile(f)
		require.NoError(t, err)
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			halfOpen := strings.Contains(name, "half-open")
			if halfOpen {
				slapdtest.RequireNetns(t)
			}
			target := realtarget.New(t, halfOpen)
			res, err := conformance.Run(t.Context(), s, target, conformance.Options{
				Slack:    250 * time.Millisecond,
				MaxQuiet: realTimeQuiet,
				MachineOptions: []fsm.Option{
					fsm.WithName(name),
					fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
				},
			})
			if errors.Is(err, realtarget.ErrUnsupported) {
				t.Skip(err)
			}
			require.NoError(t, err)
			for _, m := range res.Measured {
				t.Logf("measured %s:%d %-45s %v", name, m.Line, m.Step, m.Elapsed.Round(time.Millisecond))
			}
			require.NoError(t, res.Err(), "transcript:\n%s", res.Transcript)
		})
	}
}
