package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionCommand prints what the binary was built from: the module's
// version, the VCS revision (and whether the tree was modified), and Go's
// version, so that a report can say exactly which replink it is about.
func versionCommand(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("version takes no argument (got %q)", args[0])}
	}
	version, revision, modified := "(unknown)", "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(stdout, "replink %s\nrevision %s%s\n%s\n", version, revision, modified, runtime.Version())
	return nil
}
