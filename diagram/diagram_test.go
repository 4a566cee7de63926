package diagram_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/diagram"
)

// TestCommittedDiagramsAreFresh fails when docs/ no longer matches the table:
// run `go generate ./...` after changing transitions.go.
func TestCommittedDiagramsAreFresh(t *testing.T) {
	for file, format := range map[string]string{
		"states.dot":     "dot",
		"states.mmd":     "mermaid",
		"transitions.md": "markdown",
	} {
		t.Run(file, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, diagram.Formats[format](&b, replink.Table))
			got, err := os.ReadFile(filepath.Join("..", "docs", file))
			require.NoError(t, err)
			require.Equal(t, b.String(), string(got), "docs/%s is stale: run go generate ./...", file)
		})
	}
}

func TestEveryStateAndEventIsDrawn(t *testing.T) {
	for name, f := range diagram.Formats {
		var b bytes.Buffer
		require.NoError(t, f(&b, replink.Table))
		for _, s := range replink.States {
			require.Contains(t, b.String(), s.String(), name)
		}
		for _, e := range replink.Events {
			require.Contains(t, b.String(), e.String(), name)
		}
		for c := replink.CaseShutdown; c <= replink.CaseException; c++ {
			require.True(t, strings.Contains(b.String(), c.String()) || strings.Contains(b.String(), c.Title()), "%s lacks %s", name, c)
		}
	}
}

// Stop, shutdown and reconfigure, which every state but Stopped has, are
// drawn once, from a note, in DOT and Mermaid alike.
func TestAdminEdgesAreDrawnOnce(t *testing.T) {
	for _, format := range []string{"dot", "mermaid"} {
		var b bytes.Buffer
		require.NoError(t, diagram.Formats[format](&b, replink.Table))
		for _, ev := range []string{"stop (case 2)", "shutdown (case 1)", "reconfigure (case 2)"} {
			require.Equal(t, 1, strings.Count(b.String(), ev), "%s draws %q more than once:\n%s", format, ev, b.String())
		}
		require.Contains(t, b.String(), "AnyState")
	}
}
