package modelcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing/synctest"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/feed"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/wiresim"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// Config is one run: a seed's setup and steps, or the subset Keep of them.
type Config struct {
	Seed     int64
	Steps    int // generated steps, the first and last Sync included
	Features Features
	Keep     []int  // indices of the generated steps to run; nil runs all
	Dir      string // for the store file
}

// Failure is a check that did not hold.
type Failure struct {
	Step  int    // index among the generated steps; -1 at the end
	What  string // the step
	Check string // which check: its class, for shrinking
	Msg   string
	Trace []string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("step %d %s: %s: %s", f.Step, f.What, f.Check, f.Msg)
}

var discard = slog.New(slog.DiscardHandler)

type driver struct {
	cfg   Config
	setup Setup
	f     Features
	m     *Model
	srv   *wiresim.Server

	dbPath  string
	fl      *faults
	file    *memFile
	feed    *feed.Writer
	db      *store.DB
	sl      *store.Link
	h       tracing
	link    *ldapadapter.Link
	persist bool
	live    *wiresim.Search

	step    int
	what    string
	traceMu sync.Mutex
	trace   []string
}

// Run runs cfg inside the calling synctest bubble and returns the first
// failed check, or nil.
func Run(cfg Config) (err error) {
	setup, steps := Generate(cfg.Seed, cfg.Steps, cfg.Features)
	d := &driver{cfg: cfg, setup: setup, f: cfg.Features, m: NewModel(setup.Dialect, uint64(cfg.Seed)),
		dbPath: filepath.Join(cfg.Dir, "copy.db"), persist: setup.Persist}
	d.srv = wiresim.New(d.provider())
	d.fl = &faults{}
	d.file = newMemFile(d.fl, nil)
	d.tracef("setup: %s", setup)
	if err := d.start(); err != nil {
		return d.fail("start", "%v", err)
	}
	defer func() {
		d.stop()
		d.srv.Close()
	}()
	for i, s := range steps {
		if cfg.Keep != nil && !slices.Contains(cfg.Keep, i) {
			continue
		}
		d.step, d.what = i, s.String()
		d.tracef("step %d: %s", i, s)
		if err := d.do(s); err != nil {
			return err
		}
		synctest.Wait()
		if d.fl.isCrashed() {
			if err := d.recover(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *driver) tracef(format string, args ...any) {
	d.traceMu.Lock()
	defer d.traceMu.Unlock()
	d.trace = append(d.trace, fmt.Sprintf(format, args...))
}

func (d *driver) traceCopy() []string {
	d.traceMu.Lock()
	defer d.traceMu.Unlock()
	return slices.Clone(d.trace)
}

func (d *driver) fail(check, format string, args ...any) error {
	return &Failure{Step: d.step, What: d.what, Check: check, Msg: fmt.Sprintf(format, args...), Trace: d.traceCopy()}
}

func (d *driver) provider() wiresim.Provider {
	p := wiresim.Provider{BaseDN: d.m.Base, NsUniqueID: d.setup.Dialect == DS389}
	if d.setup.BaseIDShown {
		p.BaseID = d.m.BaseID
	}
	if d.setup.Dialect == Slapd {
		// A plain search of the content lists it (the link does, before a
		// refresh from a cookie).
		ids := slices.Clone(d.m.Order)
		p.Listing = func() []uuid.UUID { return ids }
	}
	if !d.setup.DSEHidden {
		p.Vendor = "OpenLDAP"
		if d.setup.Dialect == DS389 {
			p.Vendor = "389 Project"
		}
	}
	return p
}

// start is a new consumer process: the store file and the feed reopened,
// a new link.
func (d *driver) start() error {
	db, err := store.Open(d.dbPath, &store.Options{BatchSize: d.setup.BatchSize, BeforeCommit: commitBoundary(d.fl, d.tracef)})
	if err != nil {
		return err
	}
	sl, err := db.Link("m", store.Content{BaseDN: d.setup.ConfigBase, Scope: "sub", Filter: "(objectClass=*)"})
	if err != nil {
		db.Close()
		return err
	}
	fw, err := feed.New(d.file, feed.WithLogger(discard))
	if err != nil {
		db.Close()
		return err
	}
	d.db, d.sl, d.feed = db, sl, fw
	d.h = newHandler(sl, fw, d.tracef)
	mc := fsm.DefaultConfig()
	mc.Mode = replink.RefreshAndPersist
	if !d.persist {
		mc.Mode = replink.RefreshOnly
	}
	l, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "m", Machine: mc, LDAP: ldapadapter.Config{
		URL: "ldap://sim.invalid:389", BaseDN: d.setup.ConfigBase, BindDN: "cn=r,dc=t", Password: "pw",
		AllowCleartextPassword: true, Handler: d.h, DialContext: d.srv.Dial, Logger: discard,
	}}, fsm.WithLogger(discard))
	if err != nil {
		db.Close()
		return err
	}
	d.link = l
	d.live = nil
	return l.Start(context.Background())
}

// stop ends the process cleanly: the link stops (saving its cookie), the
// feed is flushed as the daemon does at exit, the file closes.
func (d *driver) stop() {
	if d.link == nil {
		return
	}
	d.link.Close()
	d.feed.Close()
	d.db.Close()
	d.link, d.live = nil, nil
}

// recover is the process dying at the crash point and a new one starting
// on what reached the disk.
func (d *driver) recover() error {
	where := d.fl.where
	d.tracef("crashed at %s", where)
	d.link.Close()
	d.db.Close()
	d.link, d.live = nil, nil
	data := d.file.afterCrash()
	d.fl = &faults{}
	d.file = newMemFile(d.fl, data)
	if err := d.start(); err != nil {
		return d.fail("restart", "%v", err)
	}
	if !d.f[StoreBeforeFeed] {
		return nil
	}
	// No change may be in the store without being in the feed.
	got, _, err := d.storeState()
	if err != nil {
		return d.fail("store", "%v", err)
	}
	_, hist, _ := replay(data)
	for u, c := range got {
		if !hist[u][c] {
			return d.fail("store-ahead-of-feed", "after a crash at %s the store holds %s as %s, which the feed never had", where, u, c)
		}
	}
	return nil
}

func (d *driver) do(s Step) error {
	switch s.Kind {
	case Mutate:
		oldBase, oldBaseDN := d.m.BaseID, d.m.Base
		changed, replaced := d.m.Apply(s, d.f)
		d.srv.SetProvider(d.provider())
		if d.live != nil {
			d.report(s, changed, replaced, oldBase, oldBaseDN)
		}
	case Sync:
		return d.sync(s)
	case PersistInfo:
		if d.live == nil {
			return nil
		}
		id, cookie := d.live.ID, d.m.Cookie(d.m.CSN)
		switch s.Op {
		case 0:
			d.live.Send(wiresim.RefreshPhase(id, true, cookie, true))
		case 1:
			d.live.Send(wiresim.RefreshPhase(id, false, cookie, true))
		case 2:
			d.live.Send(wiresim.SyncIDSet(id, cookie, false, slices.Clone(d.m.Order[:min(2, len(d.m.Order))])))
		default:
			d.live.Send(wiresim.NewCookie(id, cookie))
		}
	case EndSession:
		if d.live == nil {
			return nil
		}
		switch {
		case s.Op == 0 || (s.Op == 1 && d.m.Dialect == DS389):
			d.live.Send(wiresim.SyncDone(d.live.ID, d.m.Cookie(d.m.CSN), false))
		case s.Op == 1:
			d.live.Send(wiresim.Result(d.live.ID, 5, 4096, "sync refresh required"))
		default:
			d.live.Drop()
		}
		d.live = nil
	case Crash:
		d.fl.arm(s.Op, s.K, d.f[StoreBeforeFeed])
	case ProviderCrash:
		// The connection dies with the provider; it comes back with an
		// empty session log claiming a checkpoint at or before the crash.
		if d.live != nil {
			d.live.Drop()
			d.live = nil
		}
		prev := d.m.CrashedAt
		d.m.CrashedAt = d.m.CSN
		d.m.LogFrom = prev + s.rand().IntN(d.m.CSN-prev+1)
		d.tracef("  provider crash at csn %d, session log claims %d on", d.m.CrashedAt, d.m.LogFrom)
	case Restart:
		d.stop()
		data := d.file.contents()
		if d.fl.isCrashed() { // while stopping: what reached the disk
			d.tracef("crashed at %s while stopping", d.fl.where)
			data = d.file.afterCrash()
		}
		d.fl = &faults{}
		d.file = newMemFile(d.fl, data)
		d.persist = s.Op == 1
		if err := d.start(); err != nil {
			return d.fail("restart", "%v", err)
		}
	}
	return nil
}

// report sends the persist-stage messages for one write, the way the
// step's seed picks: the cookie on the entry, on a newcookie after it, or
// on nothing until a later message.
func (d *driver) report(s Step, changed []uuid.UUID, replaced bool, oldBase uuid.UUID, oldBaseDN string) {
	r := rand.New(rand.NewPCG(s.Seed, 0xc0c))
	id, cookie := d.live.ID, d.m.Cookie(d.m.CSN)
	if replaced {
		if d.m.Dialect == Slapd {
			d.live.Send(wiresim.Result(id, 5, 4096, "search base replaced"))
			d.live = nil
			return
		}
		// 389-ds: the old base deleted, the new one added; nothing about
		// the entries that went with the old base.
		d.live.Send(wiresim.SyncEntry(id, oldBaseDN, nil, wiresim.StateDelete, oldBase, nil))
		for _, u := range d.m.Order {
			e := d.m.Entries[u]
			d.live.Send(wiresim.SyncEntry(id, e.DN, e.Attrs, wiresim.StateAdd, u, nil))
		}
		d.live.Send(wiresim.NewCookie(id, cookie))
		return
	}
	for _, u := range changed {
		carrier := r.IntN(3) // on the entry, on a later message, on a newcookie right after
		if carrier == 1 && !d.f[UncoveredChanges] {
			carrier = 2
		}
		var onEntry []byte
		if carrier == 0 {
			onEntry = cookie
		}
		if e, ok := d.m.Entries[u]; ok {
			state := int64(wiresim.StateModify)
			if d.m.Created[u] == d.m.CSN {
				state = wiresim.StateAdd
			}
			d.live.Send(wiresim.SyncEntry(id, e.DN, e.Attrs, state, u, onEntry))
		} else if r.IntN(2) == 0 {
			dn := d.m.DeletedDN[u]
			if r.IntN(2) == 0 {
				dn = ""
			}
			d.live.Send(wiresim.SyncEntry(id, dn, nil, wiresim.StateDelete, u, onEntry))
		} else {
			d.live.Send(wiresim.SyncIDSet(id, onEntry, true, []uuid.UUID{u}))
		}
		if carrier == 2 {
			d.live.Send(wiresim.NewCookie(id, cookie))
		}
	}
}

// settle lets the consumer take in everything sent, then lets extra
// virtual time pass (cookie flushes).
func (d *driver) settle(extra time.Duration) {
	synctest.Wait()
	if extra > 0 {
		time.Sleep(extra)
		synctest.Wait()
	}
}

// sync brings the consumer in sync, then checks: in the persist stage by
// carrying the current cookie, otherwise by answering the link's next sync
// search with a refresh the provider could send for its cookie.
func (d *driver) sync(s Step) error {
	r := s.rand()
	if d.live != nil && d.live.Alive() {
		id, cookie := d.live.ID, d.m.Cookie(d.m.CSN)
		switch r.IntN(3) {
		case 0:
			d.live.Send(wiresim.NewCookie(id, cookie))
		case 1:
			d.live.Send(wiresim.SyncIDSet(id, cookie, true, nil))
		default:
			d.live.Send(wiresim.RefreshPhase(id, false, cookie, true))
		}
		d.settle(2 * time.Second)
		if d.fl.isCrashed() {
			return nil // the next steps recover
		}
		if st := d.link.State(); st == replink.Persisting {
			return d.check("persist stage")
		}
	}
	d.live = nil
	for attempt := range 8 {
		if d.fl.isCrashed() {
			if err := d.recover(); err != nil {
				return err
			}
		}
		srch := d.nextSearch()
		if srch == nil && d.fl.isCrashed() {
			continue
		}
		if srch == nil {
			return d.fail("link-stuck", "no sync search within 30 virtual minutes; link %s, history %v", d.link.State(), d.link.History())
		}
		finished := d.refresh(srch, r, attempt == 0)
		d.settle(0)
		if d.fl.isCrashed() || !finished {
			continue
		}
		want := replink.Polling
		if srch.Persist {
			want = replink.Persisting
		}
		switch st := d.link.State(); st {
		case want:
			if srch.Persist {
				d.live = srch
			}
			return d.check("refresh done")
		case replink.Failed:
			h := d.link.History()
			return d.fail("link-failed", "link failed after a refresh: %v", h[len(h)-1])
		}
	}
	return d.fail("link-stuck", "no refresh completed in 8 sync searches; history %v", d.link.History())
}

// nextSearch waits for the link's next live sync search; nil if none
// comes within 30 virtual minutes, or the consumer crashed meanwhile.
func (d *driver) nextSearch() *wiresim.Search {
	deadline := time.NewTimer(30 * time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case s := <-d.srv.Searches:
			if s.Alive() {
				return s
			}
		case <-tick.C:
			if d.fl.isCrashed() {
				return nil
			}
		case <-deadline.C:
			return nil
		}
	}
}

// refresh answers a sync search as the provider would from its cookie,
// and reports whether it was a refresh that ends (not 4096).
func (d *driver) refresh(s *wiresim.Search, r *rand.Rand, mayRefuse bool) bool {
	m, id := d.m, s.ID
	n := m.ParseCookie(s.Cookie)
	cookie := m.Cookie(m.CSN)
	d.tracef("  refresh from %q (csn %d) to %d, persist=%v", s.Cookie, n, m.CSN, s.Persist)
	if n >= 0 && mayRefuse && d.f[RefreshRequired] && m.Dialect == Slapd && r.IntN(5) == 0 {
		s.Send(wiresim.Result(id, 5, 4096, "sync cookie is stale"))
		return false
	}
	var out [][]byte
	// A cookie on an entry may claim only what was sent before it, unless
	// the consumer must hold it (a reload, a present phase): carryAt(x) is
	// sometimes the cookie of change x.
	carryAt := func(x int) []byte {
		if r.IntN(4) == 0 {
			return m.Cookie(x)
		}
		return nil
	}
	entry := func(u uuid.UUID, c []byte) []byte {
		e := m.Entries[u]
		return wiresim.SyncEntry(id, e.DN, e.Attrs, wiresim.StateAdd, u, c)
	}
	// end closes the refresh: present tells a present phase from a delete phase.
	end := func(present bool) {
		if s.Persist {
			out = append(out, wiresim.RefreshPhase(id, present, cookie, true))
		} else {
			out = append(out, wiresim.SyncDone(id, cookie, !present))
		}
	}
	var gone []uuid.UUID // deleted since the cookie, and known then
	for u, at := range m.Deleted {
		if at > n && m.Created[u] <= n {
			gone = append(gone, u)
		}
	}
	slices.SortFunc(gone, func(a, b uuid.UUID) int { return m.Deleted[a] - m.Deleted[b] })
	var changed []uuid.UUID // changed since the cookie, in change order
	for _, u := range m.Order {
		if m.Changed[u] > n {
			changed = append(changed, u)
		}
	}
	slices.SortFunc(changed, func(a, b uuid.UUID) int { return m.Changed[a] - m.Changed[b] })
	switch {
	case n < 0: // no cookie: everything, whatever phase the end claims
		for _, u := range m.Order {
			out = append(out, entry(u, carryAt(m.CSN)))
		}
		end(r.IntN(2) == 0)
	case m.Dialect == DS389: // changed entries, deletions in a syncIdSet, Sync Done refreshDeletes FALSE
		upTo := m.CSN
		if len(gone) > 0 {
			upTo = m.Deleted[gone[0]] - 1
		}
		for _, u := range changed {
			out = append(out, entry(u, carryAt(min(m.Changed[u], upTo))))
		}
		if len(gone) > 0 {
			out = append(out, wiresim.SyncIDSet(id, nil, true, gone))
		}
		if s.Persist {
			out = append(out, wiresim.RefreshPhase(id, false, cookie, true))
		} else {
			out = append(out, wiresim.SyncDone(id, cookie, false))
		}
	default:
		style := r.IntN(3) // present phase, delete phase, present then delete
		if m.Dialect == Slapd && n < m.CrashedAt {
			// After a crash: a cookie older than the log's bound gets a
			// present phase; a newer one a delete phase from a log that
			// lost every deletion up to the crash.
			style = 0
			if n >= m.LogFrom {
				style = 1
				gone = slices.DeleteFunc(gone, func(u uuid.UUID) bool { return m.Deleted[u] <= m.CrashedAt })
			}
		}
		if style == 1 { // every change in order, as slapd's session log has them
			asSet := r.IntN(2) == 0
			i, j := 0, 0
			for i < len(changed) || j < len(gone) {
				if j == len(gone) || (i < len(changed) && m.Changed[changed[i]] < m.Deleted[gone[j]]) {
					out = append(out, entry(changed[i], carryAt(m.Changed[changed[i]])))
					i++
					continue
				}
				u := gone[j]
				if asSet {
					out = append(out, wiresim.SyncIDSet(id, carryAt(m.Deleted[u]), true, []uuid.UUID{u}))
				} else {
					out = append(out, wiresim.SyncEntry(id, m.DeletedDN[u], nil, wiresim.StateDelete, u, carryAt(m.Deleted[u])))
				}
				j++
			}
			end(false)
			break
		}
		order := m.Order
		early := d.f[EarlyPresentCookie] && r.IntN(2) == 0
		if early { // the changed entries first, the first with the cookie
			order = slices.Clone(order)
			slices.SortStableFunc(order, func(a, b uuid.UUID) int {
				return boolInt(m.Changed[b] > n) - boolInt(m.Changed[a] > n)
			})
		}
		var later []uuid.UUID
		var set []uuid.UUID
		flush := func() {
			if len(set) > 0 {
				out = append(out, wiresim.SyncIDSet(id, carryAt(m.CSN), false, set))
				set = nil
			}
		}
		for i, u := range order {
			e := m.Entries[u]
			switch {
			case early && i == 0 && m.Changed[u] > n:
				out = append(out, entry(u, cookie))
			case m.Changed[u] > n && style == 2 && r.IntN(2) == 0:
				later = append(later, u)
				fallthrough
			case m.Changed[u] <= n:
				if r.IntN(2) == 0 {
					set = append(set, u)
					if len(set) == 3 {
						flush()
					}
				} else {
					flush()
					out = append(out, wiresim.SyncEntry(id, e.DN, nil, wiresim.StatePresent, u, carryAt(m.CSN)))
				}
			default:
				flush()
				out = append(out, entry(u, carryAt(m.CSN)))
			}
		}
		flush()
		if style == 0 {
			end(true)
			break
		}
		// The present phase is over; the rest comes in a delete phase, in
		// change order, and the deletions again (already pruned).
		out = append(out, wiresim.RefreshPhase(id, true, nil, false))
		slices.SortFunc(later, func(a, b uuid.UUID) int { return m.Changed[a] - m.Changed[b] })
		for _, u := range later {
			out = append(out, entry(u, carryAt(m.Changed[u])))
		}
		if len(gone) > 0 {
			out = append(out, wiresim.SyncIDSet(id, nil, true, gone))
		}
		end(false)
	}
	s.Send(out...)
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// storeState reads the committed copy as DB.Each shows it, by UUID, and
// fails if the store counts more entries than Each shows.
func (d *driver) storeState() (map[uuid.UUID]string, int, error) {
	got := map[uuid.UUID]string{}
	err := d.db.Each("m", func(e *ldap.Entry) error {
		attrs := map[string][][]byte{}
		var id string
		for _, a := range e.Attributes {
			attrs[a.Name] = append(attrs[a.Name], a.ByteValues...)
			if a.Name == "entryUUID" || a.Name == "nsUniqueId" {
				id = strings.ReplaceAll(a.Values[0], "-", "")
			}
		}
		u, err := uuid.Parse(id)
		if err != nil {
			return fmt.Errorf("entry %q without a readable UUID", e.DN)
		}
		got[u] = canon(e.DN, attrs)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	n, err := d.sl.Len()
	return got, n, err
}

// replay reads a feed from empty with feed.Replay: the final state by
// UUID, every state each UUID had, and the first line that does not parse
// (a torn last line is no error: the writer died in it, and the next
// writer cuts it).
func replay(data []byte) (final map[uuid.UUID]string, hist map[uuid.UUID]map[string]bool, err error) {
	final, hist = map[uuid.UUID]string{}, map[uuid.UUID]map[string]bool{}
	err = feed.Replay(bytes.NewReader(data), func(r feed.Record) error {
		switch r.Op {
		case ldapadapter.Upsert:
			c := canon(r.DN, r.Attributes)
			final[r.UUID] = c
			if hist[r.UUID] == nil {
				hist[r.UUID] = map[string]bool{}
			}
			hist[r.UUID][c] = true
		case ldapadapter.Delete:
			delete(final, r.UUID)
		}
		return nil
	})
	if errors.Is(err, feed.ErrTornLine) {
		err = nil
	}
	return final, hist, err
}

// check runs the in-sync checks: store = model, feed replay = store, and
// the committed cookie is the provider's newest.
func (d *driver) check(where string) error {
	want := map[uuid.UUID]string{}
	for u, e := range d.m.Entries {
		want[u] = e.canon()
	}
	got, n, err := d.storeState()
	if err != nil {
		return d.fail("store", "%v", err)
	}
	if n != len(got) {
		return d.fail("store-index", "%s: the store counts %d entries but DB.Each shows %d", where, n, len(got))
	}
	if diff := diffStates(want, got, "model", "store"); diff != "" {
		return d.fail("store=model", "%s: %s", where, diff)
	}
	feed, _, err := replay(d.file.contents())
	if err != nil {
		return d.fail("feed-parse", "%s: %v", where, err)
	}
	if !d.f[FeedPhantoms] {
		for u := range feed {
			if _, ok := got[u]; !ok && d.m.Entries[u] == nil {
				delete(feed, u)
			}
		}
	}
	if diff := diffStates(got, feed, "store", "feed"); diff != "" {
		return d.fail("feed=store", "%s: %s", where, diff)
	}
	raw, err := d.h.Load()
	if err != nil {
		return d.fail("cookie", "%v", err)
	}
	_, pc, _ := bytes.Cut(raw, []byte{'\n'})
	if got := d.m.ParseCookie(pc); raw == nil || got != d.m.CSN {
		return d.fail("cookie", "%s: committed cookie %q names change %d, the copy is at %d", where, raw, got, d.m.CSN)
	}
	d.tracef("  checked (%s): %d entries", where, len(want))
	return nil
}

func diffStates(a, b map[uuid.UUID]string, an, bn string) string {
	var out []string
	for u, x := range a {
		y, ok := b[u]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s lacks %s %s", bn, u, x))
		case x != y:
			out = append(out, fmt.Sprintf("%s: %s has %s, %s has %s", u, an, x, bn, y))
		}
	}
	for u, y := range b {
		if _, ok := a[u]; !ok {
			out = append(out, fmt.Sprintf("%s has %s %s, %s does not", bn, u, y, an))
		}
	}
	slices.Sort(out)
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("and %d more", len(out)-3))
	}
	return strings.Join(out, "; ")
}
