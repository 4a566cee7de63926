package conformance

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
)

func TestParseErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown verb", "start\nfrobnicate\n", "bad.txt:2: unknown step"},
		{"unknown state", "expect Flying on start within 1s", "bad.txt:1: replink: unknown state"},
		{"unknown event", "expect Polling on explode within 1s", "bad.txt:1: replink: unknown event"},
		{"missing within", "expect Polling on keepalive-miss", "bad.txt:1: usage: expect"},
		{"bad duration", "wait soon", `bad.txt:1: bad duration "soon"`},
		{"negative duration", "# c\n\nwait -1s", "bad.txt:3: negative duration"},
		{"bad setting", "config keepalive", "bad.txt:1: setting \"keepalive\" is not KEY=VALUE"},
		{"unknown setting", "config colour=blue", `bad.txt:1: unknown setting "colour"`},
		{"bad mode", "config mode=sometimes", "bad.txt:1: setting mode"},
		{"zero count", "write 0", "bad.txt:1: count must be positive"},
		{"check what", "check everything", "bad.txt:1: usage: check in-sync"},
		{"unknown target", "[openldap] start", `bad.txt:1: unknown target "openldap"`},
		{"empty qualifier", "[] start", "bad.txt:1: empty qualifier"},
		{"unclosed qualifier", "[slapd start", "bad.txt:1: qualifier without ]"},
		{"qualifier alone", "[389ds]", "bad.txt:1: qualifier without a step"},
		{"unknown alternative", "expect Polling on keepalive-miss|explode within 1s", "bad.txt:1: replink: unknown event"},
		{"line too long", "start\n# " + strings.Repeat("x", 70000), "bad.txt:2: line longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.txt", strings.NewReader(tc.text))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			var se *SyntaxError
			require.ErrorAs(t, err, &se)
		})
	}
}

func TestParseKeepsLinesAndComments(t *testing.T) {
	s, err := Parse("ok.txt", strings.NewReader("# title\nstart # go\n\nexpect Connecting on start within 0s\n"))
	require.NoError(t, err)
	require.Len(t, s.Lines, 4)
	require.Len(t, s.Steps, 2)
	require.Equal(t, 4, s.Steps[1].Line)
}

func TestParseQualifiersAndAlternatives(t *testing.T) {
	s, err := Parse("ok.txt", strings.NewReader("start\n[sim slapd] expect Polling on connection-closed within 50ms\n[389ds] expect Polling on keepalive-miss|connection-closed within 2.2s\n"))
	require.NoError(t, err)
	require.Len(t, s.Steps, 3)
	require.Empty(t, s.Steps[0].Only)
	require.Equal(t, []string{"sim", "slapd"}, s.Steps[1].Only)
	require.Equal(t, []string{"389ds"}, s.Steps[2].Only)
	require.Equal(t, []replink.Event{replink.KeepaliveMiss, replink.ConnectionClosed}, s.Steps[2].Events)
	require.Equal(t, replink.KeepaliveMiss, s.Steps[2].Event)
}
