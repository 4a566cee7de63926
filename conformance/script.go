package conformance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// Script is a parsed scenario file.
type Script struct {
	Name  string
	Lines []string // the file, line by line, for rewriting
	Steps []Step
}

// Step is one command of a script.
type Step struct {
	Line int // 1-based
	Verb string
	Args []string

	// Parsed forms, by verb.
	State  replink.State // expect, state
	Event  replink.Event // expect: the first of Events
	Events []replink.Event
	// Only names the targets the step runs against ([slapd 389ds] before
	// the verb), for a provider that behaves otherwise; empty means all.
	Only []string
	// Through allows a reach step to pass through Failed ("through
	// Failed"): a provider whose own fault races with the link's retry.
	Through  bool
	Duration time.Duration // expect (within), wait, quiet, fault's optional argument
	N        int           // write, delete
	Settings map[string]string
}

// SyntaxError reports a malformed line as file:line: message.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseFile reads and parses one script.
func ParseFile(path string) (*Script, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(path, f)
}

// Parse parses a script; name is used in error messages.
func Parse(name string, r io.Reader) (*Script, error) {
	s := &Script{Name: name}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		s.Lines = append(s.Lines, line)
		text := strings.TrimSpace(line)
		if i := strings.Index(text, "#"); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		only, text, err := parseOnly(text)
		if err != nil {
			return nil, &SyntaxError{File: name, Line: n, Msg: err.Error()}
		}
		st, err := parseStep(text)
		st.Only = only
		if err != nil {
			return nil, &SyntaxError{File: name, Line: n, Msg: err.Error()}
		}
		st.Line = n
		s.Steps = append(s.Steps, st)
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, &SyntaxError{File: name, Line: len(s.Lines) + 1, Msg: "line longer than 64 KiB"}
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

func parseStep(text string) (Step, error) {
	f := strings.Fields(text)
	st := Step{Verb: f[0], Args: f[1:]}
	args := st.Args
	want := func(n int, usage string) error {
		if len(args) != n {
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	var err error
	switch st.Verb {
	case "start", "stop", "shutdown", "crash", "restart":
		err = want(0, st.Verb)
	case "config", "reconfigure":
		if st.Settings, err = parseSettings(args); err == nil {
			scratch := fsm.DefaultConfig()
			err = applySettings(&scratch, st.Settings)
		}
	case "wait", "quiet":
		if err = want(1, st.Verb+" DURATION"); err == nil {
			st.Duration, err = parseDuration(args[0])
		}
	case "write", "delete":
		if err = want(1, st.Verb+" COUNT"); err == nil {
			st.N, err = strconv.Atoi(args[0])
			if err == nil && st.N <= 0 {
				err = fmt.Errorf("count must be positive")
			}
		}
	case "fault":
		if len(args) < 1 || len(args) > 2 {
			return st, fmt.Errorf("usage: fault NAME [DURATION]")
		}
		if len(args) == 2 {
			st.Duration, err = parseDuration(args[1])
		}
	case "state":
		if err = want(1, "state STATE"); err == nil {
			st.State, err = replink.ParseState(args[0])
		}
	case "reach":
		// For a provider whose recovery takes a path of its own choosing
		// (389-ds closes the first binds after a crash while it recovers):
		// any transitions, as long as none goes to Failed or Stopped.
		// "through Failed" lets it pass through Failed, for a fault that
		// races with the link's retry.
		st.Through = len(args) == 5 && args[3] == "through" && args[4] == "Failed"
		if (len(args) != 3 && !st.Through) || args[1] != "within" {
			return st, fmt.Errorf("usage: reach STATE within DURATION [through Failed]")
		}
		if st.State, err = replink.ParseState(args[0]); err != nil {
			return st, err
		}
		st.Duration, err = parseDuration(args[2])
	case "check":
		if len(args) != 1 || args[0] != "in-sync" {
			err = fmt.Errorf("usage: check in-sync")
		}
	case "expect":
		if len(args) != 5 || args[1] != "on" || args[3] != "within" {
			return st, fmt.Errorf("usage: expect STATE on EVENT within DURATION")
		}
		if st.State, err = replink.ParseState(args[0]); err != nil {
			return st, err
		}
		// EVENT|EVENT: either is right, for a provider whose behaviour
		// races with our timers (389-ds closes its sockets about as late as
		// a keepalive notices it silent).
		for _, name := range strings.Split(args[2], "|") {
			ev, err := replink.ParseEvent(name)
			if err != nil {
				return st, err
			}
			st.Events = append(st.Events, ev)
		}
		st.Event = st.Events[0]
		st.Duration, err = parseDuration(args[4])
	default:
		err = fmt.Errorf("unknown step %q", st.Verb)
	}
	return st, err
}

// Targets are the names a step may be qualified with.
var Targets = []string{"sim", "slapd", "389ds", "samba"}

// parseOnly splits a leading [NAME ...] qualifier off a step.
func parseOnly(text string) (only []string, rest string, err error) {
	if !strings.HasPrefix(text, "[") {
		return nil, text, nil
	}
	list, rest, ok := strings.Cut(text[1:], "]")
	if !ok {
		return nil, "", fmt.Errorf("qualifier without ]")
	}
	for _, name := range strings.Fields(list) {
		if !slices.Contains(Targets, name) {
			return nil, "", fmt.Errorf("unknown target %q in qualifier (want one of %s)", name, strings.Join(Targets, ", "))
		}
		only = append(only, name)
	}
	if len(only) == 0 {
		return nil, "", fmt.Errorf("empty qualifier")
	}
	if rest = strings.TrimSpace(rest); rest == "" {
		return nil, "", fmt.Errorf("qualifier without a step")
	}
	return only, rest, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func parseSettings(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("usage: config KEY=VALUE ...")
	}
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("setting %q is not KEY=VALUE", a)
		}
		m[k] = v
	}
	return m, nil
}
