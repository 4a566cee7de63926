package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "digraph replink {"},
		{[]string{"-format", "mermaid"}, "stateDiagram-v2"},
		{[]string{"-format", "markdown"}, "| from | event | to |"},
	} {
		var out, errb bytes.Buffer
		require.NoError(t, run(tc.args, &out, &errb))
		require.Contains(t, out.String(), tc.want)
	}
}

func TestBadInput(t *testing.T) {
	var out, errb bytes.Buffer
	require.ErrorContains(t, run([]string{"-format", "png"}, &out, &errb), `unknown format "png"`)
	require.ErrorContains(t, run([]string{"extra"}, &out, &errb), "unexpected argument")
	require.Error(t, run([]string{"-nope"}, &out, &errb))
	require.ErrorContains(t, run([]string{"-o", filepath.Join(t.TempDir(), "s.gif")}, &out, &errb), "want .svg or .png")
}

func TestRenderSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.svg")
	err := run([]string{"-o", path}, nil, nil)
	if _, lookErr := exec.LookPath("dot"); lookErr != nil {
		require.ErrorIs(t, err, errNoDot, "without dot the error must say how to get it")
		return
	}
	require.NoError(t, err)
	svg, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(svg), "<svg"))
	for _, s := range []string{"Persisting", "keepalive", "Failed", "case 5"} {
		require.Contains(t, string(svg), s)
	}
}

func TestRenderWithoutDotSaysSo(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := run([]string{"-o", filepath.Join(t.TempDir(), "s.png")}, nil, nil)
	require.ErrorIs(t, err, errNoDot)
	require.Contains(t, err.Error(), "apt-get install graphviz")
}
