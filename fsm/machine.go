package fsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	lfsm "github.com/looplab/fsm"

	"github.com/replink/replink"
)

// Machine is one provider link's state machine. Its methods are safe for
// concurrent use; all decisions are taken on one goroutine that owns the
// looplab/fsm instance, the timers and the connection.
type Machine struct {
	name    string
	adapter Adapter
	log     *slog.Logger

	mu      sync.Mutex // guards queue, replies and closed
	queue   []message
	spare   []message // the run goroutine's batch, swapped with queue
	replies []chan result
	closed  bool
	wake    chan struct{} // cap 1: the queue went non-empty
	done    chan struct{} // closed when run returns
	ctx     context.Context
	cancel  context.CancelFunc
	state   atomic.Uint32
	hist    history
	notify  notifier
	cfgSnap atomic.Pointer[Config]

	// Owned by the run goroutine.
	cfg     Config
	rnd     *rand.Rand
	conn    Conn
	epoch   uint64 // identifies conn; events from older connections are stale
	timers  timers
	retries int
	probe   time.Time     // when the outstanding keepalive probe was sent; zero if none
	lead    time.Duration // how much sooner than KeepaliveInterval the next probe goes; zero: not drawn
	cause   error         // why the link is in Failed or Polling
}

// Option adjusts a Machine at construction.
type Option func(*Machine)

// WithName labels the machine in transitions and logs.
func WithName(name string) Option { return func(m *Machine) { m.name = name } }

// WithLogger sends the machine's logs to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(m *Machine) { m.log = l } }

// WithRand fixes the source of backoff jitter, for reproducible schedules.
func WithRand(r *rand.Rand) Option { return func(m *Machine) { m.rnd = r } }

// New validates cfg and starts a machine in Stopped. Call Close to release it.
func New(cfg Config, adapter Adapter, opts ...Option) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if adapter == nil {
		return nil, &ConfigError{Field: "Adapter", Reason: "nil"}
	}
	m := &Machine{
		name:    "link",
		adapter: adapter,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		cfg:     cfg,
	}
	for _, o := range opts {
		o(m)
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.hist.resize(cfg.HistorySize)
	m.cfgSnap.Store(&cfg)
	go m.run()
	return m, nil
}

// loopFSMs are the looplab machines of the table, one per mode, shared by
// every Machine of the process. looplab keeps its tables in each instance
// (about 3.5 KiB), and a machine owning one was the largest item of a
// persisting link's heap. A machine borrows its mode's instance under its
// lock for one step: set to the machine's state, fired, released. Steps
// are transitions, not probes, so the lock is held a few microseconds a
// few times per link and connection.
var loopFSMs [2]struct {
	once sync.Once
	mu   sync.Mutex
	f    *lfsm.FSM
}

// loopEvent fires ev from state from through looplab's machine for mode.
func loopEvent(mode replink.Mode, from replink.State, ev replink.Event) error {
	l := &loopFSMs[mode]
	l.once.Do(func() { l.f = newLoopFSM(replink.Stopped, mode) })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.SetState(from.String())
	// A fresh, never-cancelled context: looplab/fsm stays stuck in
	// InTransitionError if the context of Event is cancelled (upstream #115).
	return l.f.Event(context.Background(), ev.String())
}

// newLoopFSM builds the looplab machine for one mode from replink.Table.
// It registers no callbacks: the engine runs its own exit and entry actions
// after Event returns, so nothing ever re-enters looplab/fsm.
func newLoopFSM(initial replink.State, mode replink.Mode) *lfsm.FSM {
	type key struct {
		ev replink.Event
		to replink.State
	}
	idx := map[key]int{}
	var evs lfsm.Events
	for _, t := range replink.Table {
		if !t.Applies(mode) {
			continue
		}
		k := key{t.Event, t.To}
		i, ok := idx[k]
		if !ok {
			i = len(evs)
			idx[k] = i
			evs = append(evs, lfsm.EventDesc{Name: t.Event.String(), Dst: t.To.String()})
		}
		evs[i].Src = append(evs[i].Src, t.From.String())
	}
	return lfsm.NewFSM(initial.String(), evs, nil)
}

// Name is the label given with WithName.
func (m *Machine) Name() string { return m.name }

// State is the current state. It may be stale by the time it is read.
func (m *Machine) State() replink.State { return replink.State(m.state.Load()) }

// Config is the configuration in force.
func (m *Machine) Config() Config { return *m.cfgSnap.Load() }

// History returns the most recent transitions, oldest first.
func (m *Machine) History() []Transition { return m.hist.snapshot() }

// Observe calls fn with every transition from now on, in order, never
// concurrently with itself or another observer, and never on the machine's
// goroutine. The returned function stops the calls.
func (m *Machine) Observe(fn func(Transition)) (cancel func()) { return m.notify.add(fn) }

// Post queues ev without waiting for it to be handled. It is how tests and
// simple adapters inject events; an event the current state does not accept
// is logged and dropped.
func (m *Machine) Post(ev replink.Event, cause error) {
	m.enqueue(message{ev: ev, cause: cause})
}

// Fire queues ev and waits until the machine has handled it. It returns the
// transition taken, a *replink.TransitionError when the current state does
// not accept ev, ErrUnknownEvent, ErrClosed, or ctx's error.
func (m *Machine) Fire(ctx context.Context, ev replink.Event, cause error) (Transition, error) {
	return m.call(ctx, message{ev: ev, cause: cause})
}

// Start asks a Stopped or Failed link to connect.
func (m *Machine) Start(ctx context.Context) error {
	_, err := m.Fire(ctx, replink.Start, nil)
	return err
}

// Stop takes the link to Stopped (case 2): the connection is unbound and the
// cookie flushed before Stop returns. Stopping a stopped link is a no-op.
func (m *Machine) Stop(ctx context.Context) error {
	_, err := m.Fire(ctx, replink.Stop, nil)
	return err
}

// Reconfigure validates cfg and applies it: a running link reconnects with
// it, a stopped one keeps it for its next start. Other links are untouched.
//
// A reconfiguration happens whole or not at all, and the result says which:
// nil means applied; an error (a *ConfigError, ErrClosed, or ctx's error
// wrapped in ErrNotApplied) means nothing changed. Once the machine has
// taken the request it is carried out even if ctx ends meanwhile, and
// Reconfigure waits for it: that wait is bounded by the connection's Close.
func (m *Machine) Reconfigure(ctx context.Context, cfg Config) error {
	return m.ReconfigureAdapter(ctx, cfg, nil)
}

// ReconfigureAdapter is Reconfigure that also replaces the adapter, in the
// same step: the connection made after it uses a. A nil a keeps the adapter.
func (m *Machine) ReconfigureAdapter(ctx context.Context, cfg Config, a Adapter) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	_, err := m.call(ctx, message{ev: replink.Reconfigure, cfg: &cfg, adapter: a, claim: new(atomic.Bool)})
	return err
}

// Close shuts the link down (case 1: unbind, flush the cookie), stops the
// machine's goroutine and waits for it and for pending observer calls.
// Further calls return ErrClosed. Close is idempotent.
func (m *Machine) Close() error {
	m.mu.Lock()
	already := m.closed
	if !already {
		m.queue = append(m.queue, message{ev: replink.Shutdown, final: true})
		m.closed = true
	}
	m.mu.Unlock()
	if !already {
		m.signal()
	}
	<-m.done
	m.notify.wait()
	return nil
}

// Done is closed when the machine's goroutine has exited after Close.
func (m *Machine) Done() <-chan struct{} { return m.done }

type message struct {
	ev      replink.Event
	cause   error
	epoch   uint64 // non-zero: from the connection with this epoch
	cfg     *Config
	adapter Adapter // with cfg: replaces the adapter
	final   bool    // Close: exit after handling
	reply   chan result
	// claim, if set, makes the message all-or-nothing: whoever sets it
	// first, the machine taking the message or a caller giving up, decides
	// whether it runs.
	claim *atomic.Bool
}

type result struct {
	tr  Transition
	err error
}

// call posts msg and waits for its reply. Reply channels are recycled per
// machine, not in a global sync.Pool: a channel made inside one
// testing/synctest bubble must never reach another.
func (m *Machine) call(ctx context.Context, msg message) (Transition, error) {
	msg.reply = m.getReply()
	if !m.enqueue(msg) {
		return Transition{}, ErrClosed
	}
	select {
	case r := <-msg.reply:
		m.putReply(msg.reply) // drained: safe to reuse
		return r.tr, r.err
	case <-ctx.Done():
		if msg.claim == nil || msg.claim.CompareAndSwap(false, true) {
			return Transition{}, notApplied(msg, ctx.Err())
		}
		// The machine took it first: it runs whole, so wait for the outcome.
		select {
		case r := <-msg.reply:
			m.putReply(msg.reply)
			return r.tr, r.err
		case <-m.done:
			return Transition{}, ErrClosed
		}
	case <-m.done:
		return Transition{}, ErrClosed
	}
}

func notApplied(msg message, err error) error {
	if msg.claim == nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNotApplied, err)
}

func (m *Machine) getReply() chan result {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.replies); n > 0 {
		c := m.replies[n-1]
		m.replies = m.replies[:n-1]
		return c
	}
	return make(chan result, 1)
}

func (m *Machine) putReply(c chan result) {
	m.mu.Lock()
	if len(m.replies) < 4 {
		m.replies = append(m.replies, c)
	}
	m.mu.Unlock()
}

func (m *Machine) enqueue(msg message) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false
	}
	m.queue = append(m.queue, msg)
	m.mu.Unlock()
	m.signal()
	return true
}

func (m *Machine) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Machine) run() {
	defer close(m.done)
	defer m.cancel()
	for {
		select {
		case <-m.wake:
		case now := <-m.timers.c():
			due := m.timers.fired(now)
			for k := timerKind(1); k < numTimers; k++ {
				if due&(1<<k) != 0 {
					m.onTimer(k)
				}
			}
		}
		for {
			// Take the whole queue and give back the previous batch's
			// array: no allocation once both have grown to the burst size.
			m.mu.Lock()
			batch := m.queue
			m.queue = m.spare[:0]
			m.mu.Unlock()
			if len(batch) == 0 {
				m.spare = batch
				break
			}
			for i := range batch {
				if m.handle(batch[i]) {
					m.timers.stopAll()
					return
				}
				batch[i] = message{} // drop references to causes and replies
			}
			m.spare = batch[:0]
		}
	}
}

// handle processes one message and reports whether the machine must exit.
func (m *Machine) handle(msg message) (exit bool) {
	var res result
	switch {
	case msg.epoch != 0 && msg.epoch != m.epoch:
		m.log.Debug("stale event dropped", "link", m.name, "event", msg.ev, "cause", msg.cause)
		return false
	case msg.claim != nil && !msg.claim.CompareAndSwap(false, true):
		return msg.final // the caller gave up before we got to it
	case !msg.ev.Valid():
		res.err = ErrUnknownEvent
	default:
		if msg.cfg != nil {
			m.applyConfig(*msg.cfg)
		}
		if msg.adapter != nil {
			m.adapter = msg.adapter
		}
		res.tr, res.err = m.step(msg.ev, msg.cause)
	}
	if msg.reply != nil {
		msg.reply <- res
	} else if res.err != nil {
		m.log.Debug("event ignored", "link", m.name, "event", msg.ev, "state", m.State(), "err", res.err)
	}
	return msg.final
}

func (m *Machine) applyConfig(cfg Config) {
	m.cfg = cfg
	m.cfgSnap.Store(&cfg)
	m.hist.resize(cfg.HistorySize)
}

// peer is what the current connection says of its provider, if anything.
func (m *Machine) peer() string {
	if p, ok := m.conn.(interface{ Peer() string }); ok && m.conn != nil {
		return p.Peer()
	}
	return ""
}

// step fires ev through looplab/fsm and, if it moved, runs the exit actions
// of the old state and the entry actions of the new one.
func (m *Machine) step(ev replink.Event, cause error) (Transition, error) {
	from := m.State()
	if ev == replink.ConnectFailed && m.cfg.MaxRetries > 0 && m.retries >= m.cfg.MaxRetries {
		ev, cause = replink.RetriesExhausted, &RetriesError{Attempts: m.retries + 1, Last: cause}
	}
	err := loopEvent(m.cfg.Mode, from, ev)
	var noTrans lfsm.NoTransitionError
	if err != nil && !errors.As(err, &noTrans) {
		return Transition{}, &replink.TransitionError{From: from, Event: ev, Mode: m.cfg.Mode}
	}
	row, err := replink.Lookup(from, ev, m.cfg.Mode)
	if err != nil {
		return Transition{}, err // looplab and the table disagree: cannot happen, tested
	}
	tr := Transition{Link: m.name, From: from, To: row.To, Event: ev, Case: row.Case, Cause: cause, Time: time.Now()}
	if from == replink.Stopped && row.To == replink.Stopped {
		return tr, nil // an idempotent admin request: nothing happened, nothing to report
	}
	tr.Peer = m.peer()
	m.exit(tr)
	m.state.Store(uint32(row.To))
	m.enter(tr)
	if row.To == replink.Connecting {
		tr.Peer = m.peer() // the provider now being tried
	}
	m.hist.add(tr)
	m.notify.publish(tr)
	level := slog.LevelDebug
	if cause != nil {
		level = slog.LevelWarn
	}
	if m.log.Enabled(m.ctx, level) { // building the attributes costs allocations
		m.log.Log(m.ctx, level, "link transition", "link", m.name, "from", from, "to", row.To, "event", ev, "cause", cause)
	}
	return tr, nil
}
