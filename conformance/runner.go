package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// Options tune a run.
type Options struct {
	// Base is the configuration "config" lines modify; zero means fsm.DefaultConfig.
	Base *fsm.Config
	// MachineOptions are passed to every fsm.New (logger, seeded jitter).
	MachineOptions []fsm.Option
	// Slack widens every time bound, for runs in real time: a bound d
	// becomes d*Factor + Slack. Zero Factor means 1.
	Factor float64
	Slack  time.Duration
	// WorkSlack widens further the bounds of what is the provider's work,
	// not the link's decision (connected: a bind and the base check;
	// refresh-done: a refresh): on a loaded machine a real provider takes
	// its time there, while a detection bound stays as tight as Slack.
	WorkSlack time.Duration
	// MaxQuiet caps "quiet" steps, for runs in real time.
	MaxQuiet time.Duration
	// Update rewrites expectations from what happened instead of failing.
	Update bool
	// Trace, if set, sees every transition and every step as it happens.
	Trace func(line int, step string, tr *fsm.Transition)
}

// Measurement is one matched expectation, with how long it took after the
// step before it (After): for the first expectation after a fault, the
// time from the fault to its detection.
type Measurement struct {
	Line    int
	Step    string
	After   string
	Elapsed time.Duration
	// Event is the event that happened: one of the step's alternatives.
	Event replink.Event
}

// Result is what a run produced.
type Result struct {
	// Transcript is the script with every expectation rewritten from what
	// happened; equal to the input when the run conforms.
	Transcript string
	Measured   []Measurement
	Failures   []string
}

// Err summarises the failures, or nil.
func (r *Result) Err() error {
	if len(r.Failures) == 0 {
		return nil
	}
	return errors.New(strings.Join(r.Failures, "\n"))
}

// Run executes s against t. The returned error is a setup failure (bad
// configuration, a fault the target cannot inject); conformance failures are
// in Result.Failures and visible as differences in Result.Transcript.
func Run(ctx context.Context, s *Script, t Target, o Options) (*Result, error) {
	r := &runner{s: s, t: t, o: o, res: &Result{}, out: append([]string(nil), s.Lines...)}
	if o.Base != nil {
		r.cfg = *o.Base
	} else {
		r.cfg = fsm.DefaultConfig()
	}
	defer r.closeMachine()
	r.ref = time.Now()
	name := ""
	if n, ok := t.(interface{ Name() string }); ok {
		name = n.Name()
	}
	for _, st := range s.Steps {
		if err := ctx.Err(); err != nil {
			return r.res, err
		}
		if len(st.Only) > 0 && !slices.Contains(st.Only, name) {
			continue // for another provider
		}
		if o.Trace != nil && st.Verb != "expect" {
			o.Trace(st.Line, strings.Join(append([]string{st.Verb}, st.Args...), " "), nil)
		}
		if err := r.step(ctx, st); err != nil {
			return r.res, fmt.Errorf("%s:%d: %w", s.Name, st.Line, err)
		}
		r.prev = strings.Join(append([]string{st.Verb}, st.Args...), " ")
	}
	r.res.Transcript = strings.Join(r.out, "\n") + "\n"
	return r.res, nil
}

type runner struct {
	s   *Script
	t   Target
	o   Options
	res *Result
	out []string

	cfg     fsm.Config
	m       *fsm.Machine
	trs     chan fsm.Transition
	unwatch func()
	ref     time.Time // where the next "within" counts from
	prev    string    // the step ref belongs to
}

func (r *runner) bound(d time.Duration) time.Duration {
	f := r.o.Factor
	if f == 0 {
		f = 1
	}
	return time.Duration(float64(d)*f) + r.o.Slack
}

func (r *runner) fail(st Step, format string, args ...any) {
	r.res.Failures = append(r.res.Failures, fmt.Sprintf("%s:%d: %s", r.s.Name, st.Line, fmt.Sprintf(format, args...)))
}

func (r *runner) machine() (*fsm.Machine, error) {
	if r.m != nil {
		return r.m, nil
	}
	m, err := fsm.New(r.cfg, r.t.Adapter(), r.o.MachineOptions...)
	if err != nil {
		return nil, err
	}
	r.m = m
	r.trs = make(chan fsm.Transition, 1024)
	r.unwatch = m.Observe(func(tr fsm.Transition) {
		if r.o.Trace != nil {
			r.o.Trace(0, "", &tr)
		}
		r.trs <- tr
	})
	return m, nil
}

func (r *runner) closeMachine() {
	if r.m == nil {
		return
	}
	r.m.Close()
	r.unwatch()
	r.m = nil
}

func (r *runner) step(ctx context.Context, st Step) error {
	var err error
	begin := time.Now()
	switch st.Verb {
	case "config":
		if r.m != nil {
			return errors.New("config after the link exists: use reconfigure")
		}
		err = applySettings(&r.cfg, st.Settings)
		if err == nil {
			err = r.cfg.Validate()
		}
	case "reconfigure":
		cfg := r.cfg
		if err = applySettings(&cfg, st.Settings); err != nil {
			return err
		}
		m, err := r.machine()
		if err != nil {
			return err
		}
		if err = m.Reconfigure(ctx, cfg); err != nil {
			return err
		}
		r.cfg = cfg
	case "start", "stop", "shutdown":
		ev, _ := replink.ParseEvent(st.Verb)
		m, err := r.machine()
		if err != nil {
			return err
		}
		if _, err := m.Fire(ctx, ev, nil); err != nil {
			r.fail(st, "%v", err)
		}
	case "crash": // the consumer process dies: no unbind, no flush
		r.t.Crash()
		r.closeMachine()
	case "restart": // a new consumer process over the same store
		r.closeMachine()
		_, err = r.machine()
	case "fault":
		err = r.t.Fault(st.Args[0], st.Duration)
	case "write":
		err = r.t.Write(st.N)
	case "delete":
		err = r.t.Delete(st.N)
	case "wait":
		sleep(ctx, st.Duration)
	case "quiet":
		r.quiet(ctx, st)
	case "state":
		if r.m == nil || r.m.State() != st.State {
			got := replink.Stopped
			if r.m != nil {
				got = r.m.State()
			}
			r.fail(st, "state is %s, want %s", got, st.State)
			r.out[st.Line-1] = "state " + got.String()
		}
	case "check":
		if err := r.t.InSync(); err != nil {
			r.fail(st, "replica differs from provider: %v", err)
			r.out[st.Line-1] = "# NOT in sync: " + err.Error()
		}
	case "expect":
		r.expect(ctx, st)
		return nil // expect sets ref itself
	case "reach":
		r.reach(ctx, st)
		return nil // reach sets ref itself
	}
	switch st.Verb {
	case "wait", "quiet", "state", "check":
		r.ref = time.Now()
	default:
		// An action is timed from its start: a provider's FIN can reach
		// the consumer before the SIGTERM that caused it has been reaped.
		r.ref = begin
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// next waits up to d for the next transition.
func (r *runner) next(ctx context.Context, d time.Duration) (fsm.Transition, bool) {
	if r.trs == nil {
		sleep(ctx, d)
		return fsm.Transition{}, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case tr := <-r.trs:
		return tr, true
	case <-t.C:
	case <-ctx.Done():
	}
	return fsm.Transition{}, false
}

func (r *runner) expect(ctx context.Context, st Step) {
	limit := r.bound(st.Duration)
	if slices.ContainsFunc(st.Events, func(e replink.Event) bool { return e == replink.Connected || e == replink.RefreshDone }) {
		limit += r.o.WorkSlack
	}
	wait := limit + time.Second // judge by the transition's own time, not by who wakes first
	if r.o.Update {
		wait = limit + 5*time.Minute
	}
	tr, ok := r.next(ctx, wait)
	if !ok {
		r.fail(st, "want %s on %s within %v: no transition", st.State, st.Args[2], st.Duration)
		r.out[st.Line-1] = fmt.Sprintf("# no transition within %v (was: %s)", wait, strings.Join(append([]string{st.Verb}, st.Args...), " "))
		r.ref = time.Now()
		return
	}
	elapsed := tr.Time.Sub(r.ref)
	r.ref = tr.Time
	if tr.To == st.State && slices.Contains(st.Events, tr.Event) && elapsed <= limit {
		r.res.Measured = append(r.res.Measured, Measurement{Line: st.Line, Step: strings.Join(st.Args, " "), After: r.prev, Elapsed: elapsed, Event: tr.Event})
		return
	}
	cause := ""
	if tr.Cause != nil {
		cause = " (" + tr.Cause.Error() + ")"
	}
	r.fail(st, "want %s on %s within %v, got %s on %s after %v%s", st.State, st.Args[2], st.Duration, tr.To, tr.Event, elapsed, cause)
	within := st.Duration
	if elapsed > within {
		within = elapsed.Round(100 * time.Millisecond)
		if within < elapsed {
			within += 100 * time.Millisecond
		}
	}
	r.out[st.Line-1] = qualifier(st) + fmt.Sprintf("expect %s on %s within %v", tr.To, tr.Event, within)
}

// reach takes transitions until the machine arrives in st.State within
// st.Duration of the reference time, through any states but Failed and
// Stopped.
func (r *runner) reach(ctx context.Context, st Step) {
	limit := r.bound(st.Duration)
	deadline := r.ref.Add(limit + time.Second)
	var path []string
	for {
		tr, ok := r.next(ctx, max(time.Until(deadline), 0))
		if !ok {
			r.fail(st, "want %s within %v: got only %v", st.State, st.Duration, path)
			r.ref = time.Now()
			return
		}
		path = append(path, tr.To.String()+" on "+tr.Event.String())
		elapsed := tr.Time.Sub(r.ref)
		switch {
		case tr.To == replink.Stopped, tr.To == replink.Failed && !st.Through:
			r.fail(st, "want %s within %v: went %v", st.State, st.Duration, path)
		case tr.To == st.State && elapsed > limit:
			r.fail(st, "want %s within %v: took %v (%v)", st.State, st.Duration, elapsed, path)
		case tr.To == st.State:
			r.res.Measured = append(r.res.Measured, Measurement{Line: st.Line, Step: strings.Join(st.Args, " "), After: r.prev, Elapsed: elapsed, Event: tr.Event})
		default:
			continue
		}
		r.ref = tr.Time
		return
	}
}

// qualifier is the [NAME ...] a rewritten line keeps.
func qualifier(st Step) string {
	if len(st.Only) == 0 {
		return ""
	}
	return "[" + strings.Join(st.Only, " ") + "] "
}

func (r *runner) quiet(ctx context.Context, st Step) {
	d := st.Duration
	if r.o.MaxQuiet > 0 && d > r.o.MaxQuiet {
		d = r.o.MaxQuiet
	}
	if tr, ok := r.next(ctx, d); ok {
		r.fail(st, "want no transition for %v, got %s on %s after %v", st.Duration, tr.To, tr.Event, tr.Time.Sub(r.ref))
		r.out[st.Line-1] = fmt.Sprintf("# not quiet: %s on %s after %v", tr.To, tr.Event, tr.Time.Sub(r.ref))
	}
}
