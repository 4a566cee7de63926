// Command replink-tour shows the link state machine at work. It is a demo
// and test companion: it carries the test harness (a throwaway slapd, the
// fault proxy, the simulated provider), which the replink daemon does not.
//
//	replink-tour tour            run the six cases of the design mail against
//	                             a real slapd it starts itself, with real
//	                             faults, and print how long each took to detect
//	replink-tour simulate FILE   run a conformance scenario against the
//	                             simulated provider, in real time
//	replink-tour demo            start a seeded slapd and a replink daemon
//	                             mirroring it (make demo)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/replink/replink/conformance"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "replink-tour:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  replink-tour tour [-scenarios GLOB] [-provider slapd|389ds|samba]
                                            the six cases against a real provider, with timings
  replink-tour simulate [-entries N] FILE   run a scenario against the simulated provider
  replink-tour demo [-entries N]            a seeded slapd and a replink daemon mirroring it
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "simulate":
		return simulate(ctx, args[1:], stdout, stderr)
	case "tour":
		return tour(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	entries := fs.Int("entries", 20, "entries the simulated provider starts with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("simulate needs exactly one scenario file")
	}
	s, err := conformance.ParseFile(fs.Arg(0))
	if err != nil {
		return err
	}
	start := time.Now()
	stamp := func() string { return fmt.Sprintf("%8.3fs", time.Since(start).Seconds()) }
	opts := conformance.Options{
		Slack:          50 * time.Millisecond, // real time: scheduling noise
		MachineOptions: []fsm.Option{fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))},
		Trace: func(line int, step string, tr *fsm.Transition) {
			if tr != nil {
				cause := ""
				if tr.Cause != nil {
					cause = "  (" + tr.Cause.Error() + ")"
				}
				fmt.Fprintf(stdout, "%s     %-10s -> %-10s on %s%s\n", stamp(), tr.From, tr.To, tr.Event, cause)
				return
			}
			fmt.Fprintf(stdout, "%s  %3d: %s\n", stamp(), line, step)
		},
	}
	res, err := conformance.Run(ctx, s, sim.NewTarget(*entries), opts)
	if err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("scenario did not conform:\n%w", err)
	}
	fmt.Fprintf(stdout, "%s  %s conforms: %d expectations met\n", stamp(), fs.Arg(0), len(res.Measured))
	return nil
}
