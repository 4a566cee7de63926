// Command replink mirrors LDAP directories over RFC 4533 syncrepl into a
// durable local store, and never hangs on a dead link.
//
//	replink run --config replink.yaml       run every link of the file
//	replink run --url URL --base DN --store FILE [link flags]
//	                                        run one link from flags
//	replink dump --store FILE [--link NAME] the copy as sorted LDIF
//	replink canon < file.ldif               any LDIF in dump's order, to diff
//	replink reset --store FILE --link NAME  drop a link's copy and cookie
//	replink approve-deletions --http ADDR --link NAME [--http-token-file F]
//	                                        apply what the deletion guard holds
//	replink version                         module version, VCS revision, Go version
//
// SIGTERM and SIGINT stop every link cleanly (unbind, commit) and exit 0
// (1 if a link had failed for good);
// SIGHUP re-reads the configuration file and starts, stops or reconnects
// only the links that changed. See docs/daemon.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(mainCode(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // failed while running
	exitUsage = 2 // bad command line or configuration: nothing was started
)

const usage = `usage:
  replink run --config FILE [--http ADDR [--http-token-file FILE]] [--changes FILE|-] [--log-format text|json]
  replink run --url URL --base DN --store FILE [--bind-dn DN --password-file F] [link flags]
  replink dump --store FILE [--link NAME]
  replink canon < file.ldif
  replink reset --store FILE --link NAME
  replink approve-deletions --http ADDR --link NAME [--http-token-file FILE]
  replink version
run 'replink run -h' for every link flag.
`

// usageError is a mistake on the command line or in the configuration.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func mainCode(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "replink:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "replink:", err)
		return exitError
	}
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{errors.New("no command")}
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stdout, stderr)
	case "dump":
		return dumpCommand(args[1:], stdout, stderr)
	case "canon":
		return canonCommand(args[1:], stdin, stdout, stderr)
	case "version":
		return versionCommand(args[1:], stdout)
	case "reset":
		return resetCommand(args[1:], stdout, stderr)
	case "approve-deletions":
		return approveCommand(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Errorf("unknown command %q", args[0])}
	}
}

func joinErrors(errs []error) error { return errors.Join(errs...) }
