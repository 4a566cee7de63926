package ldapadapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
)

// Delta-syncrepl (OpenLDAP's syncdata=accesslog). The provider's accesslog
// overlay logs every successful write to the main database as an entry of
// a log database (cn=accesslog), with the write's own CSN; syncprov on the
// log serves that database like any other. The consumer follows the log
// with an ordinary RFC 4533 search, sending the main database's cookie,
// and applies each record as the write it records: a modify of one
// attribute costs that attribute on the wire, not the whole entry.
//
// The log does not always suffice. A copy without a cookie has nothing to
// apply writes to; a cookie the log was purged past is answered with
// e-syncRefreshRequired; a logged write may not fit the copy (it diverged,
// or the write moved an entry in from outside the base, whose attributes
// the log lacks). Each time, like OpenLDAP's consumer, the link refreshes
// the main base (RFC 4533, present phase, prune as usual) from its cookie
// and goes back to the log on the same connection.

// logAttributes are what a record of the log says about the write.
var logAttributes = []string{"reqDN", "reqType", "reqMod", "reqNewRDN", "reqDeleteOldRDN", "reqNewSuperior", "reqEntryUUID", "entryCSN"}

// maxFallbackStreak bounds the refreshes in a row that found the log no
// more usable than before: past it the link fails and retries with backoff.
const maxFallbackStreak = 3

// deltaSession follows the provider's accesslog; s refreshes the main base
// when needed, and applies the changes and notes the cookies of both.
type deltaSession struct {
	s     *session
	scope *logScope
	// refreshd: the log search's refresh stage ended (refresh-done posted).
	refreshd bool
}

func newDeltaSession(s *session) *deltaSession {
	return &deltaSession{s: s, scope: newLogScope(s.c.cfg)}
}

// run refreshes the main base when the copy has no cookie or the last
// session gave up on the log, then follows the log.
func (d *deltaSession) run(ctx context.Context, t *tap) (replink.Event, error) {
	c := d.s.c
	fb := c.st.pending.Swap(nil)
	if fb != nil {
		// refresh-required was our own request: keep the cookie, the
		// refresh of the base starts from it.
		d.s.req.DropCookie = false
	}
	cookie, err := d.s.loadCookie(ctx)
	if ctx.Err() != nil {
		return 0, nil
	}
	if err != nil {
		return replink.Exception, err
	}
	if fb == nil && len(cookie) > 0 && d.copyAhead(ctx) {
		// The copy may hold writes past the cookie (the link stopped
		// before the cookie covering them was saved): replaying the log
		// would apply them twice, and a write applied twice does not fit.
		fb = fallbackf(FallbackCopyAhead, "the copy may be ahead of its cookie")
		d.count(fb)
	}
	if len(cookie) == 0 || fb != nil {
		c.st.setProtocol(ProtocolRefresh)
		if fb != nil {
			c.st.setProtocol(ProtocolFallback)
		}
		// A fallback's cookie may be older than the provider's session
		// log: reloadHint asks for a present phase rather than 4096.
		d.s.quiet, d.s.reloadHint = true, fb != nil
		ev, err := d.s.search(ctx, t, ldap.SyncRequestModeRefreshOnly, cookie)
		if ev != 0 || err != nil || ctx.Err() != nil || !d.s.refreshd {
			return ev, err
		}
		if cookie, err = d.cookie(ctx, cookie); err != nil {
			return replink.Exception, err
		}
	}
	c.st.setProtocol(ProtocolLog)
	ev, err := d.follow(ctx, t, cookie)
	if errors.Is(err, errLogWithoutState) && ctx.Err() == nil && !d.refreshd {
		return d.wholeEntries(ctx, t, cookie, err)
	}
	return ev, err
}

// errLogWithoutState: slapd answers a cookie on a log that has never
// recorded a write (a provider loaded with slapadd, say) with 53
// "consumer has state info but provider doesn't!", until its first write.
var errLogWithoutState = errors.New("the log has recorded no write yet")

// wholeEntries follows the base with whole-entry syncrepl for the rest of
// this connection, when the log cannot place the cookie because it has
// recorded nothing yet: the copy stays exact, and the next connection
// tries the log again.
func (d *deltaSession) wholeEntries(ctx context.Context, t *tap, cookie []byte, why error) (replink.Event, error) {
	c := d.s.c
	c.cfg.Logger.Info("delta-syncrepl: the log has recorded no write yet; following the base with whole entries until the next connection", "log", c.cfg.LogBase, "err", why)
	c.st.setProtocol(ProtocolSyncrepl)
	s := &session{c: c, req: d.s.req, seen: map[uuid.UUID]struct{}{}, deferred: map[uuid.UUID]struct{}{}}
	mode := ldap.SyncRequestModeRefreshAndPersist
	if d.s.req.Mode == replink.RefreshOnly {
		mode = ldap.SyncRequestModeRefreshOnly
	}
	return s.search(ctx, t, mode, cookie)
}

// cookie is the newest cookie the session recorded, or else def.
func (d *deltaSession) cookie(ctx context.Context, def []byte) ([]byte, error) {
	c := d.s.c
	if err := c.st.enter(ctx); err != nil {
		return nil, err
	}
	defer c.st.leave()
	if c.cookie != nil {
		def = c.cookie
	}
	if len(def) == 0 {
		return nil, protocolErrorf("the refresh of %s gave no cookie to follow the log %s from", c.cfg.BaseDN, c.cfg.LogBase)
	}
	return def, nil
}

// logSearchRequest is the sync search of the log: the records of
// successful writes under the base or into it, from the main base's cookie.
func logSearchRequest(id int64, cfg *Config, mode ldap.ControlSyncRequestMode, cookie []byte) ([]byte, error) {
	// Writes under the base, and moves into it from outside: those the
	// copy cannot apply (it lacks the entry), but must know of.
	base := ldap.EscapeFilter(cfg.BaseDN)
	filter := "(&(objectClass=auditWriteObject)(reqResult=0)(|(reqDN:dnSubtreeMatch:=" + base + ")(reqNewSuperior:dnSubtreeMatch:=" + base + "))" + cfg.LogFilter + ")"
	return searchRequest(id, cfg.LogBase, ldap.ScopeWholeSubtree, filter, logAttributes,
		ldap.NewControlSyncRequest(mode, cookie, false).Encode(), ldap.NewControlManageDsaIT(false).Encode())
}

// follow runs the sync search of the log from cookie.
func (d *deltaSession) follow(ctx context.Context, t *tap, cookie []byte) (replink.Event, error) {
	cfg := d.s.c.cfg
	// The log's records are writes applied in order, each with its own
	// cookie: none of the base refresh's reasons to hold a cookie back (a
	// present phase, deferred deletions) holds here, and the session notes
	// them as after a refresh. Without this a link resuming from a stored
	// cookie, which refreshes nothing first, never saved a cookie, so its
	// changes were never committed.
	d.s.refreshd = true
	mode := ldap.SyncRequestModeRefreshAndPersist
	if d.s.req.Mode == replink.RefreshOnly {
		mode = ldap.SyncRequestModeRefreshOnly
	}
	build := func(id int64) ([]byte, error) { return logSearchRequest(id, cfg, mode, cookie) }
	ev, err := d.s.c.searchLoop(ctx, t, build, func() bool { return !d.refreshd }, func(m syncMessage) (bool, replink.Event, error) {
		switch m.op {
		case opSearchEntry:
			if m.state == nil {
				return true, replink.Exception, protocolErrorf("log record %q without a sync state control", m.entry.DN)
			}
			if m.state.State != ldap.SyncStateAdd && m.state.State != ldap.SyncStateModify {
				// A record purged or named present: the log's own
				// housekeeping, nothing that happened to the base.
				if err := d.s.note(ctx, m.state.Cookie, false); err != nil {
					return true, replink.Exception, err
				}
				return false, 0, nil
			}
			if err := d.record(ctx, m.entry, m.state.Cookie); err != nil {
				ev, err := failure(err)
				return true, ev, err
			}
		case opIntermediate:
			if m.info != nil {
				if err := d.info(ctx, m.info); err != nil {
					return true, replink.Exception, err
				}
			}
		case opSearchDone:
			ev, err := d.searchDone(ctx, m, mode)
			return true, ev, err
		}
		return false, 0, nil
	})
	var fb *FallbackError
	if errors.As(err, &fb) {
		return d.fallback(ctx, fb)
	}
	return ev, err
}

// info handles a Sync Info message of the log search. The log has no
// present phase to honour (syncprov-nopresent), and the UUIDs it names are
// the records', not the entries': only the cookie and the end of the
// refresh stage matter.
func (d *deltaSession) info(ctx context.Context, si *ldap.ControlSyncInfo) error {
	var cookie []byte
	done := false
	switch {
	case si.NewCookie != nil:
		cookie = si.NewCookie.Cookie
	case si.RefreshDelete != nil:
		cookie, done = si.RefreshDelete.Cookie, si.RefreshDelete.RefreshDone
	case si.RefreshPresent != nil:
		cookie, done = si.RefreshPresent.Cookie, si.RefreshPresent.RefreshDone
	case si.SyncIdSet != nil:
		cookie = si.SyncIdSet.Cookie
	}
	if err := d.s.note(ctx, cookie, done); err != nil {
		return err
	}
	if done {
		d.caughtUp()
	}
	return nil
}

// caughtUp reports refresh-done once: the log's refresh stage is over.
func (d *deltaSession) caughtUp() {
	if d.refreshd {
		return
	}
	d.refreshd = true
	d.s.c.st.streak.Store(0)
	d.s.c.sink.Post(replink.RefreshDone, nil)
}

// searchDone handles the end of the log search.
func (d *deltaSession) searchDone(ctx context.Context, m syncMessage, mode ldap.ControlSyncRequestMode) (replink.Event, error) {
	switch {
	case ctx.Err() != nil:
		return 0, nil
	case ldap.IsErrorWithCode(m.err, resultSyncRefreshRequired):
		return 0, &FallbackError{Cause: FallbackStaleCookie, Err: m.err}
	case ldap.IsErrorWithCode(m.err, ldap.LDAPResultUnwillingToPerform) && strings.Contains(m.err.Error(), "provider doesn't"):
		return replink.Exception, fmt.Errorf("%w: %w", errLogWithoutState, m.err)
	case m.err != nil:
		return d.s.searchDone(ctx, m, mode) // a failure, classified as for the base
	}
	var cookie []byte
	if m.done != nil {
		cookie = m.done.Cookie
	}
	if err := d.s.note(ctx, cookie, true); err != nil {
		return failure(err)
	}
	if mode == ldap.SyncRequestModeRefreshOnly {
		d.caughtUp()
		return 0, nil
	}
	return replink.ConnectionClosed, ErrPersistEnded
}

// fallback gives up on the log for one refresh of the base: the cookie of
// the last record applied is saved, the cause counted and logged, and
// refresh-required asks the state machine for a new session, which
// refreshes from that cookie (not dropping it) and returns to the log.
func (d *deltaSession) fallback(ctx context.Context, fb *FallbackError) (replink.Event, error) {
	c := d.s.c
	if err := d.s.note(ctx, nil, true); err != nil {
		return 0, nil // stopping
	}
	if n := c.st.streak.Add(1); n > maxFallbackStreak {
		c.st.streak.Store(0)
		return replink.Exception, fmt.Errorf("%d refreshes in a row and the log still cannot be followed: %w", n-1, fb)
	}
	d.count(fb)
	c.st.pending.Store(fb)
	return replink.RefreshRequired, fb
}

// count counts and logs a fallback.
func (d *deltaSession) count(fb *FallbackError) {
	c := d.s.c
	c.st.countFallback(fb.Cause)
	c.cfg.Logger.Warn("delta-syncrepl: falling back to a refresh of the base", "cause", string(fb.Cause), "err", fb.Err, "base", c.cfg.BaseDN, "log", c.cfg.LogBase)
}

// copyAhead reports whether the stored cookie was marked ahead of the copy.
func (d *deltaSession) copyAhead(ctx context.Context) bool {
	c := d.s.c
	if c.st.enter(ctx) != nil {
		return false
	}
	defer c.st.leave()
	return c.marked
}

// logRecord is one write as the log recorded it.
type logRecord struct {
	typ        string // add, delete, modify, modrdn
	dn         string
	id         uuid.UUID
	mods       []Mod
	newRDN     string
	deleteOld  bool
	newSup     string
	hasNewSup  bool
	recordName string // the log entry's DN, for errors
}

// ErrLogRecord is wrapped by the errors of a log record the link cannot read.
var ErrLogRecord = errors.New("unreadable accesslog record")

func parseRecord(e *ldap.Entry) (*logRecord, error) {
	r := &logRecord{recordName: e.DN, typ: strings.ToLower(e.GetAttributeValue("reqType")), dn: e.GetAttributeValue("reqDN")}
	if r.dn == "" || r.typ == "" {
		return nil, fmt.Errorf("%w %q: no reqDN or reqType", ErrLogRecord, e.DN)
	}
	if v := e.GetAttributeValue("reqEntryUUID"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("%w %q: reqEntryUUID %q: %v", ErrLogRecord, e.DN, v, err)
		}
		r.id = id
	}
	var err error
	if r.mods, err = parseReqMod(e.GetRawAttributeValues("reqMod")); err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrLogRecord, e.DN, err)
	}
	r.newRDN = e.GetAttributeValue("reqNewRDN")
	r.deleteOld = strings.EqualFold(e.GetAttributeValue("reqDeleteOldRDN"), "TRUE")
	if a := attribute(e, "reqNewSuperior"); a != nil && len(a.Values) > 0 {
		r.newSup, r.hasNewSup = a.Values[0], true
	}
	if r.id == uuid.Nil && r.typ == "add" {
		for _, m := range r.mods {
			if equalFoldASCII(m.Attr, "entryUUID") && len(m.Values) == 1 {
				r.id, _ = uuid.ParseBytes(m.Values[0])
			}
		}
	}
	if r.id == uuid.Nil {
		return nil, fmt.Errorf("%w %q: no reqEntryUUID (slapd 2.5 or later logs it)", ErrLogRecord, e.DN)
	}
	return r, nil
}

// record applies one log record to the copy, with the cookie it came with.
func (d *deltaSession) record(ctx context.Context, e *ldap.Entry, cookie []byte) error {
	r, err := parseRecord(e)
	if err != nil {
		return err
	}
	old, err := d.stored(ctx, r.id)
	if err != nil {
		return err
	}
	ch, err := d.change(ctx, r, old)
	if err != nil {
		return err
	}
	if ch == nil { // nothing for this copy
		return d.s.note(ctx, cookie, false)
	}
	if err := d.s.apply(ctx, *ch, cookie); err != nil {
		return err
	}
	d.s.c.st.streak.Store(0)
	return nil
}

// stored reads the copy's entry id, under the gate.
func (d *deltaSession) stored(ctx context.Context, id uuid.UUID) (*ldap.Entry, error) {
	c := d.s.c
	if err := c.st.enter(ctx); err != nil {
		return nil, err
	}
	defer c.st.leave()
	e, err := c.handler.(EntryReader).Entry(ctx, id)
	if err != nil {
		return nil, &HandlerError{Change: Change{Op: Upsert, UUID: id}, Err: err}
	}
	return e, nil
}

// change is what the write r does to the copy, which holds old (or not):
// nil for nothing, a *FallbackError when the copy cannot tell.
func (d *deltaSession) change(ctx context.Context, r *logRecord, old *ldap.Entry) (*Change, error) {
	sc := d.scope
	switch r.typ {
	case "add":
		if !sc.holds(r.dn) {
			return nil, nil
		}
		if old != nil {
			return nil, fallbackf(FallbackEntryExists, "add of %s: the copy holds entry %s", r.dn, r.id)
		}
		e := &ldap.Entry{DN: r.dn}
		if err := applyMods(e, sc.selected(r.mods)); err != nil {
			return nil, err
		}
		return sc.upsert(r, e, nil, false)
	case "delete":
		if old == nil {
			return nil, nil // as OpenLDAP's consumer: already gone
		}
		if err := d.s.checkBase(r.id, old.DN, true); err != nil {
			return nil, err
		}
		return &Change{Op: Delete, UUID: r.id, DN: old.DN}, nil
	case "modify":
		if old == nil {
			return nil, sc.unknown(r, r.dn)
		}
		e := cloneEntry(old)
		mods := sc.selected(r.mods)
		if err := applyMods(e, mods); err != nil {
			return nil, err
		}
		return sc.upsert(r, e, mods, true)
	case "modrdn":
		newDN, err := renamed(r)
		if err != nil {
			return nil, err
		}
		if old == nil {
			if sc.holds(newDN) {
				return nil, fallbackf(FallbackScope, "rename of %s to %s: an entry the copy does not hold is now in scope, and the log has none of its attributes", r.dn, newDN)
			}
			return nil, sc.unknown(r, r.dn)
		}
		if err := d.s.checkBase(r.id, "", true); err != nil {
			return nil, err // the base itself moved
		}
		if !sc.holds(newDN) {
			return &Change{Op: Delete, UUID: r.id, DN: old.DN}, nil // moved out of scope
		}
		if err := d.s.c.childless(ctx, newDN); err != nil {
			return nil, err
		}
		e := cloneEntry(old)
		e.DN = newDN
		if err := renameValues(e, r, sc); err != nil {
			return nil, err
		}
		if err := applyMods(e, sc.selected(r.mods)); err != nil {
			return nil, err
		}
		return sc.upsert(r, e, nil, true)
	}
	return nil, fallbackf(FallbackScope, "logged operation %q on %s", r.typ, r.dn)
}

// renamed is the DN r gives its entry: the new RDN under the new superior,
// or under the old parent. The parent is taken from reqDN, the provider's
// name for the entry when it was renamed.
func renamed(r *logRecord) (string, error) {
	if r.newRDN == "" {
		return "", fmt.Errorf("%w %q: modrdn without reqNewRDN", ErrLogRecord, r.recordName)
	}
	if r.hasNewSup {
		if r.newSup == "" {
			return r.newRDN, nil
		}
		return r.newRDN + "," + r.newSup, nil
	}
	_, parent := splitRDN(r.dn)
	if parent == "" {
		return r.newRDN, nil
	}
	return r.newRDN + "," + parent, nil
}

// splitRDN splits a DN string at its first unescaped, unquoted comma.
func splitRDN(s string) (rdn, parent string) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',', ';':
			if !quoted {
				return s[:i], strings.TrimLeft(s[i+1:], " ")
			}
		}
	}
	return s, ""
}

// renameValues applies a rename to the naming attributes, as the provider
// does (RFC 4511 §4.9): the new RDN's values are added where missing, and
// with deleteoldrdn the old RDN's values that are not in the new one go.
func renameValues(e *ldap.Entry, r *logRecord, sc *logScope) error {
	newRDN, err := ldap.ParseDN(r.newRDN)
	if err != nil || len(newRDN.RDNs) != 1 {
		return fmt.Errorf("%w %q: reqNewRDN %q", ErrLogRecord, r.recordName, r.newRDN)
	}
	oldRDNText, _ := splitRDN(r.dn)
	oldRDN, err := ldap.ParseDN(oldRDNText)
	if err != nil || len(oldRDN.RDNs) != 1 {
		return fmt.Errorf("%w %q: reqDN %q", ErrLogRecord, r.recordName, r.dn)
	}
	if r.deleteOld {
		for _, av := range oldRDN.RDNs[0].Attributes {
			if hasAVA(newRDN.RDNs[0], av) {
				continue
			}
			if a := attribute(e, av.Type); a != nil {
				if i := indexValue(a, []byte(av.Value), true); i >= 0 {
					a.ByteValues = append(a.ByteValues[:i:i], a.ByteValues[i+1:]...)
					a.Values = append(a.Values[:i:i], a.Values[i+1:]...)
					if len(a.ByteValues) == 0 {
						removeAttribute(e, av.Type)
					}
				}
			}
		}
	}
	for _, av := range newRDN.RDNs[0].Attributes {
		if !sc.attrs.selects(av.Type) {
			continue
		}
		a := attribute(e, av.Type)
		if a == nil {
			a = &ldap.EntryAttribute{Name: av.Type}
			e.Attributes = append(e.Attributes, a)
		}
		if indexValue(a, []byte(av.Value), true) < 0 {
			a.ByteValues = append(a.ByteValues, []byte(av.Value))
			a.Values = append(a.Values, av.Value)
		}
	}
	return nil
}

func hasAVA(r *ldap.RelativeDN, av *ldap.AttributeTypeAndValue) bool {
	for _, x := range r.Attributes {
		if strings.EqualFold(x.Type, av.Type) && strings.EqualFold(x.Value, av.Value) {
			return true
		}
	}
	return false
}

// childless checks, with the provider, that the entry renamed to dn has
// no children now: the log records a subtree rename as one modrdn, and a
// copy that cannot rename the entries under it must refresh instead.
func (c *conn) childless(ctx context.Context, dn string) error {
	c.mu.Lock()
	lc := c.lc
	c.mu.Unlock()
	if lc == nil {
		return fallbackf(FallbackScope, "rename of %s: cannot tell whether it has children", dn)
	}
	req := ldap.NewSearchRequest(dn, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"1.1"}, nil)
	// Bounded: the log stream's queue could fill meanwhile and hold up
	// the answer behind it.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r := lc.SearchAsync(ctx, req, 1)
	children := 0
	for r.Next() {
		if r.Entry() != nil {
			children++
		}
	}
	err := r.Err()
	switch {
	case ctx.Err() != nil:
		return fallbackf(FallbackScope, "rename of %s: no answer to whether it has children", dn)
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil // renamed again or deleted since: later records say so
	case children > 0 || ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return fallbackf(FallbackScope, "rename of %s, which has children: the log names only the entry", dn)
	case err != nil:
		return fallbackf(FallbackScope, "rename of %s: cannot tell whether it has children: %v", dn, err)
	}
	return nil
}
