package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: a scenario file, however mangled, parses or fails with a
// SyntaxError naming the file and line; it never panics.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../testdata/conformance/*.txt")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("expect Polling on keepalive-miss within 2.2s\nwait -1s\nconfig mode=\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse("fuzz.txt", strings.NewReader(text))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != "fuzz.txt" || se.Line < 1 {
				t.Fatalf("not a SyntaxError with a line: %#v", err)
			}
			return
		}
		for _, st := range s.Steps {
			if st.Line < 1 || st.Line > len(s.Lines) {
				t.Fatalf("step on line %d of %d", st.Line, len(s.Lines))
			}
		}
	})
}
