package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSimulateRunsAScenario(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"simulate", "../../testdata/conformance/refresh-required.txt"}, &out, &errb)
	require.NoError(t, err, errb.String())
	require.Contains(t, out.String(), "Persisting -> Refreshing on refresh-required")
	require.Contains(t, out.String(), "conforms")
}

func TestSimulateReportsNonConformance(t *testing.T) {
	f := filepath.Join(t.TempDir(), "wrong.txt")
	require.NoError(t, os.WriteFile(f, []byte("start\nexpect Failed on start within 0s\n"), 0o644))
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"simulate", f}, &out, &errb)
	require.ErrorContains(t, err, "wrong.txt:2: want Failed on start")
}

func TestBadUsage(t *testing.T) {
	var out, errb bytes.Buffer
	require.Error(t, run(t.Context(), nil, &out, &errb))
	require.ErrorContains(t, run(t.Context(), []string{"fly"}, &out, &errb), `unknown command "fly"`)
	require.ErrorContains(t, run(t.Context(), []string{"simulate"}, &out, &errb), "exactly one")
	require.ErrorContains(t, run(t.Context(), []string{"simulate", "/nonexistent"}, &out, &errb), "no such file")
	require.ErrorContains(t, run(t.Context(), []string{"tour", "-provider", "bogus"}, &out, &errb), "want slapd, 389ds or samba")
}
