package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The product binary carries no test harness: no throwaway slapd, no fault
// proxy, no simulated provider.
func TestBinaryLinksNoHarness(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, pkg := range []string{"internal/slapdtest", "internal/realtarget", "replink/sim", "replink/conformance", "testify"} {
		require.NotContains(t, string(out), pkg)
	}
	require.True(t, strings.Contains(string(out), "replink/store"))
}
