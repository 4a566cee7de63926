package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/replink/replink/conformance"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/dstest"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/sambatest"
	"github.com/replink/replink/internal/slapdtest"
)

// tour runs scenarios against a real slapd it starts itself, printing every
// transition, then a table of how long each fault took to be detected.
func tour(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tour", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pattern := fs.String("scenarios", "testdata/conformance/case*.txt", "scenario files to run")
	provider := fs.String("provider", "slapd", "provider to run them against: slapd (OpenLDAP), 389ds or samba (an AD DC, over DirSync)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kind := realtarget.Kind(*provider)
	switch kind {
	case realtarget.Slapd:
		if slapdtest.Binary() == "" {
			return errors.New("slapd is not installed: apt-get install slapd ldap-utils (the tour starts its own slapd; the system service is not used)")
		}
	case realtarget.DS389:
		if ns, dc := dstest.Binaries(); ns == "" || dc == "" {
			return errors.New("389-ds is not installed: apt-get install 389-ds-base (the tour creates its own instance; no system instance is used)")
		}
	case realtarget.Samba:
		if samba, tool := sambatest.Binaries(); samba == "" || tool == "" {
			return errors.New("Samba AD DC is not installed: apt-get install --no-install-recommends samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind (the tour provisions its own domain; no system service is used)")
		}
		// One domain provisioned for the tour, copied for every scenario.
		defer sambatest.UseTemplate()()
	default:
		return fmt.Errorf("-provider %q: want slapd, 389ds or samba", *provider)
	}
	files, err := filepath.Glob(*pattern)
	switch {
	case err != nil:
		return fmt.Errorf("-scenarios %q: %w", *pattern, err)
	case len(files) == 0:
		return fmt.Errorf("no scenario matches %q", *pattern)
	}
	var rows []row
	failed := 0
	for _, f := range files {
		r, err := tourOne(ctx, f, kind, stdout)
		if err != nil {
			fmt.Fprintf(stdout, "  %s: %v\n", filepath.Base(f), err)
			if !errors.Is(err, errSkipped) {
				failed++
			}
			continue
		}
		rows = append(rows, r...)
	}
	fmt.Fprintf(stdout, "\nTime from each fault (or admin action) to the state it leads to, real %s, real time:\n", kind)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tafter\tdetected as\tbound\tmeasured")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", r.scenario, r.after, r.step, r.bound, r.elapsed.Round(100*time.Microsecond))
	}
	tw.Flush()
	if failed > 0 {
		return fmt.Errorf("%d scenarios did not conform", failed)
	}
	return nil
}

type row struct {
	scenario, after, step, bound string
	elapsed                      time.Duration
}

var errSkipped = slapdtest.ErrSkipped

func tourOne(ctx context.Context, file string, kind realtarget.Kind, stdout io.Writer) (rows []row, err error) {
	s, err := conformance.ParseFile(file)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(filepath.Base(file), ".txt")
	tb := &slapdtest.Harness{}
	defer tb.Close()
	if herr := tb.Run(func() { rows, err = tourScenario(ctx, s, tb, kind, name, stdout) }); herr != nil {
		return nil, herr
	}
	return rows, err
}

func tourScenario(ctx context.Context, s *conformance.Script, tb *slapdtest.Harness, kind realtarget.Kind, name string, stdout io.Writer) (rows []row, err error) {
	fmt.Fprintf(stdout, "\n== %s (%s)\n", name, kind)
	target := realtarget.New(tb, kind, strings.Contains(name, "half-open"))
	start := time.Now()
	var work time.Duration
	if kind == realtarget.Samba {
		// A DirSync refresh copies the whole domain, hundreds of objects:
		// provider work that takes its time on a loaded machine (the
		// detection bounds stay as they are).
		work = 2 * time.Second
	}
	res, err := conformance.Run(ctx, s, target, conformance.Options{
		Slack:          250 * time.Millisecond,
		WorkSlack:      work,
		MaxQuiet:       5 * time.Second,
		MachineOptions: []fsm.Option{fsm.WithName(name), fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))},
		Trace: func(line int, step string, tr *fsm.Transition) {
			at := fmt.Sprintf("%7.3fs", time.Since(start).Seconds())
			if tr == nil {
				fmt.Fprintf(stdout, "%s  %3d: %s\n", at, line, step)
				return
			}
			cause := ""
			if tr.Cause != nil {
				cause = "  (" + tr.Cause.Error() + ")"
			}
			fmt.Fprintf(stdout, "%s       %s -> %s on %s%s\n", at, tr.From, tr.To, tr.Event, cause)
		},
	})
	if errors.Is(err, realtarget.ErrUnsupported) {
		return nil, fmt.Errorf("%w: %v", errSkipped, err)
	}
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	for _, m := range res.Measured {
		verb, _, _ := strings.Cut(m.After, " ")
		switch verb {
		case "fault", "stop", "shutdown", "crash", "reconfigure":
			f := strings.Fields(m.Step)
			rows = append(rows, row{name, m.After, f[0] + " on " + m.Event.String(), f[4], m.Elapsed})
		}
	}
	return rows, nil
}
