package conformance_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/conformance"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/sim"
)

var update = flag.Bool("update", false, "rewrite the expectations in testdata/conformance from what happened")

const dir = "../testdata/conformance"

func scripts(t *testing.T) []*conformance.Script {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out []*conformance.Script
	for _, f := range files {
		s, err := conformance.ParseFile(f)
		require.NoError(t, err)
		out = append(out, s)
	}
	return out
}

// TestScenariosSimulated runs every scenario against the simulated provider
// in virtual time: minutes of backoff and keepalive take microseconds.
func TestScenariosSimulated(t *testing.T) {
	for _, s := range scripts(t) {
		t.Run(strings.TrimSuffix(filepath.Base(s.Name), ".txt"), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := conformance.Options{
					Update: *update,
					MachineOptions: []fsm.Option{
						fsm.WithRand(rand.New(rand.NewPCG(7, 7))),
						fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
					},
				}
				res, err := conformance.Run(context.Background(), s, sim.NewTarget(20), opts)
				require.NoError(t, err)
				want := strings.Join(s.Lines, "\n") + "\n"
				if *update {
					require.NoError(t, os.WriteFile(s.Name, []byte(res.Transcript), 0o644))
					return
				}
				require.Equal(t, want, res.Transcript, "scenario %s does not conform (rerun with -update after a deliberate change):\n%v", s.Name, res.Err())
				require.NoError(t, res.Err())
			})
		})
	}
}

// TestScenariosUseTableTransitions checks, without running anything, that
// every expectation is a (state, event) pair the table has: a scenario
// cannot specify behaviour the machine is not built from.
func TestScenariosUseTableTransitions(t *testing.T) {
	covered := map[replink.State]bool{}
	for _, target := range conformance.Targets {
		for _, s := range scripts(t) {
			mode := replink.RefreshAndPersist
			state := replink.Stopped
			for _, st := range s.Steps {
				if len(st.Only) > 0 && !slices.Contains(st.Only, target) {
					continue
				}
				switch st.Verb {
				case "config", "reconfigure":
					if m, ok := st.Settings["mode"]; ok {
						var err error
						mode, err = replink.ParseMode(m)
						require.NoError(t, err)
					}
				case "restart":
					state = replink.Stopped
				case "expect":
					for _, ev := range st.Events {
						row, err := replink.Lookup(state, ev, mode)
						require.NoError(t, err, "%s:%d (%s)", s.Name, st.Line, target)
						require.Equal(t, st.State, row.To, "%s:%d (%s): the table sends %s on %s to %s", s.Name, st.Line, target, state, ev, row.To)
					}
					state = st.State
					covered[state] = true
				case "reach":
					state = st.State
				}
			}
		}
	}
	for _, s := range replink.States {
		require.True(t, covered[s], "no scenario reaches %s", s)
	}
}

func TestSixCasesHaveScenarios(t *testing.T) {
	for c := 1; c <= 6; c++ {
		m, err := filepath.Glob(filepath.Join(dir, "case"+string(rune('0'+c))+"-*.txt"))
		require.NoError(t, err)
		require.NotEmpty(t, m, "case %d of the design mail has no scenario", c)
	}
}

// A step qualified with another target does not run; one qualified with
// this target's name does, like an unqualified one.
func TestQualifiedStepsRunOnlyOnTheirTarget(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		fails        bool
	}{
		{"other target's wrong expectation is skipped", "[slapd 389ds] expect Stopped on stop within 0s\n", false},
		{"own wrong expectation fails", "[sim] expect Stopped on stop within 0s\n", true},
		{"own right expectation passes", "[389ds sim] expect Refreshing on connected within 50ms\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				text := "start\nexpect Connecting on start within 0s\n" + tc.script
				s, err := conformance.Parse("q.txt", strings.NewReader(text))
				require.NoError(t, err)
				opts := conformance.Options{MachineOptions: []fsm.Option{fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}}
				res, err := conformance.Run(context.Background(), s, sim.NewTarget(3), opts)
				require.NoError(t, err)
				if tc.fails {
					require.Error(t, res.Err())
					return
				}
				require.NoError(t, res.Err())
			})
		})
	}
}
