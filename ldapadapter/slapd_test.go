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
	"github.com/replink/replink/internal/dstest"
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
	runScenarios(t, realtarget.Slapd, false)
}

// TestScenariosAgainstSlapdDelta runs the same scenarios with a link that
// follows slapd's accesslog (delta-syncrepl): the same state machine, the
// same faults, the same expectations.
func TestScenariosAgainstSlapdDelta(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time scenarios against slapd: not in -short")
	}
	slapdtest.Require(t)
	runScenarios(t, realtarget.Slapd, true)
}

// TestScenariosAgainst389ds runs the same scenarios against a real 389
// Directory Server (Content Synchronization plugin). Where 389-ds behaves
// otherwise, the scenario says so on lines qualified [389ds].
func TestScenariosAgainst389ds(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time scenarios against 389-ds: not in -short")
	}
	dstest.Require(t)
	runScenarios(t, realtarget.DS389, false)
}

// workSlack is how much longer than the link's own bound a real provider
// may take over a bind or a refresh on a loaded 2-core machine. A Samba
// DC's DirSync round took up to 3.2 s there (make test beside benchmarks),
// slapd's and 389-ds's refreshes stay within 2 s.
func workSlack(kind realtarget.Kind) time.Duration {
	if kind == realtarget.Samba {
		return 5 * time.Second
	}
	return 2 * time.Second
}

func runScenarios(t *testing.T, kind realtarget.Kind, delta bool) {
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
			var target *realtarget.Target
			if delta {
				target = realtarget.NewDelta(t, halfOpen)
			} else {
				target = realtarget.New(t, kind, halfOpen)
			}
			res, err := conformance.Run(t.Context(), s, target, conformance.Options{
				Slack:     250 * time.Millisecond,
				WorkSlack: workSlack(kind),
				MaxQuiet:  realTimeQuiet,
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
