package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	docsPath     = "../../docs/daemon.md"
	tableStart   = "<!-- settings table: generated from linkSettings in cmd/replink/settings.go -->\n"
	tableEnd     = "<!-- end of settings table -->"
	updateDocsEV = "REPLINK_UPDATE_DOCS" // =1 rewrites the docs' table from the code
)

// The docs' table of link settings is the code's table, and the YAML
// example lists every link setting, in the same order: they cannot drift.
func TestConfigDocsMatchSettings(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	require.NoError(t, err)
	doc := string(b)
	i, j := strings.Index(doc, tableStart), strings.Index(doc, tableEnd)
	require.True(t, i >= 0 && j > i, "docs/daemon.md has no settings table")
	if os.Getenv(updateDocsEV) == "1" {
		doc = doc[:i+len(tableStart)] + settingsTable() + doc[j:]
		require.NoError(t, os.WriteFile(docsPath, []byte(doc), 0o644))
		return
	}
	require.Equal(t, settingsTable(), doc[i+len(tableStart):j], "run %s=1 go test -run TestConfigDocsMatchSettings ./cmd/replink/", updateDocsEV)

	block := doc[strings.Index(doc, "```yaml\n"):]
	block = block[:strings.Index(block[3:], "```")]
	links := block[strings.Index(block, "\nlinks:\n"):]
	var keys []string
	for _, m := range regexp.MustCompile(`(?m)^  (?:- |  )(?:# )?([a-z-]+):`).FindAllStringSubmatch(links, -1) {
		keys = append(keys, m[1])
	}
	require.Equal(t, linkFields, keys, "the YAML example in docs/daemon.md lists every link setting in the table's order")
}

// `replink run --help` gives every link flag its meaning and default, from
// the same table; `replink version` says what the binary was built from.
func TestHelpAndVersion(t *testing.T) {
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "run", "--help")
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "--help is not an error")
	help := stderr.String()
	require.NotContains(t, help, "link setting")
	for _, st := range linkSettings {
		require.Regexp(t, `(?m)^  -`+st.key+`( value)?$`, help)
		require.Contains(t, help, st.meaning, st.key)
	}
	require.Contains(t, help, "(default 30s)", "keepalive's default")

	out, err := exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `(?m)^replink \S+\nrevision \S+.*\ngo1\.\d+`, string(out))
}
