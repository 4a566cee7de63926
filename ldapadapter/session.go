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
	"github.com/replink/replink/fsm"
)

// ErrPersistEnded is the cause of connection-closed when the provider ends
// a refreshAndPersist search with success, which it does only when leaving.
var ErrPersistEnded = errors.New("provider ended the persistent search")

// ErrRefreshStalled is the cause of the exception that ends a refresh the
// provider stopped sending without ending it (Config.RefreshStall).
var ErrRefreshStalled = errors.New("refresh stalled")

// resultSyncRefreshRequired is e-syncRefreshRequired (RFC 4533 2.5).
const resultSyncRefreshRequired = 4096

// Sync implements fsm.Conn: it starts the sync search on the bound
// connection, after any previous one on it has stopped.
func (c *conn) Sync(req fsm.SyncRequest) {
	c.mu.Lock()
	if c.closed || c.tap == nil { // not connected yet, or closing
		c.mu.Unlock()
		return
	}
	prevStop, prevDone := c.stopSync, c.syncDone
	ctx, stop := context.WithCancel(c.ctx)
	done := make(chan struct{})
	c.stopSync, c.syncDone = stop, done
	t := c.tap
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(done)
		defer stop()
		if prevStop != nil {
			prevStop()
			<-prevDone
		}
		if ev, cause := c.transport(req).run(ctx, t); ev != 0 && ctx.Err() == nil && !t.dead() {
			c.sink.Post(ev, cause)
		}
	}()
}

// session is one sync search of the link's content (RFC 4533): one
// refresh, and in refreshAndPersist the persist stage after it. It is the
// syncrepl transport, and the refresh step of the others.
type session struct {
	c        *conn
	req      fsm.SyncRequest
	seen     map[uuid.UUID]struct{} // present phase: entries the provider still has
	refreshd bool                   // refresh-done already reported: the persist stage
	reload   bool                   // no cookie: the refresh names every entry the provider has
	present  bool                   // a present phase is under way
	deleting bool                   // a delete phase began: its end licenses no prune
	// empty: a reload into a copy that held nothing when the session
	// began (Counter), so a prune finds nothing and the present phase
	// need not be remembered.
	empty  bool
	pruned bool // unseen entries already deleted in this refresh
	// deferred are the deletions of the refresh under way: named by the
	// provider, or implied by a complete present phase. They are applied
	// together when it ends, once the deletion guard has counted them, so
	// a refresh that would delete too much applies none of them.
	deferred map[uuid.UUID]struct{}
	// held is the newest cookie of a refresh that may not be saved before
	// it ends: a restart from a cookie taken inside a reload or a present
	// phase would never learn what the rest of it implied.
	held []byte
	// quiet: the refresh is one step of another protocol's session (delta
	// syncrepl refreshes the main base before following the log), which
	// reports refresh-done itself.
	quiet bool
	// reloadHint asks the provider for a refresh rather than
	// e-syncRefreshRequired when the cookie is too old (RFC 4533 §2.2).
	reloadHint bool
	// listing is the content's UUIDs as listed before a refresh from a
	// cookie, against which the refresh's deletions are checked (audit.go);
	// nil when not listed.
	listing contentListing
}

// run streams the search and returns the event that ended it, or 0.
func (s *session) run(ctx context.Context, t *tap) (replink.Event, error) {
	s.c.st.setProtocol(ProtocolSyncrepl)
	cookie, err := s.loadCookie(ctx)
	if ctx.Err() != nil {
		return 0, nil
	}
	if err != nil {
		return replink.Exception, err
	}
	if len(cookie) > 0 && !s.c.dialect.changesOnly && !s.c.listed {
		// See audit.go: a delete phase may lack what a provider crash
		// lost. Once per connection: a provider that restarts ends it.
		s.c.listed = true
		if s.listing, err = s.c.listContent(ctx); err != nil {
			if ctx.Err() != nil {
				return 0, nil
			}
			s.c.cfg.Logger.Warn("cannot list the content before the refresh: its deletions are taken on the provider's word", "base", s.c.cfg.BaseDN, "err", err)
		}
	}
	mode := ldap.SyncRequestModeRefreshAndPersist
	if s.req.Mode == replink.RefreshOnly {
		mode = ldap.SyncRequestModeRefreshOnly
	}
	return s.search(ctx, t, mode, cookie)
}

// search runs the sync search of the link's content from cookie.
func (s *session) search(ctx context.Context, t *tap, mode ldap.ControlSyncRequestMode, cookie []byte) (replink.Event, error) {
	cfg := s.c.cfg
	// Without a cookie the provider sends its whole content, whatever phase
	// it says it ends with, so what it did not name is gone: a consumer
	// that kept its copy across a lost or dropped cookie must prune it.
	s.reload = len(cookie) == 0
	// Only a reload names everything the copy is to hold. A refresh from
	// a cookie into an empty copy still remembers what it names: checks
	// of its deletions (a listing of the content) rely on it.
	s.empty = s.empty && s.reload
	build := func(id int64) ([]byte, error) { return syncSearchRequest(id, cfg, mode, cookie, s.reloadHint) }
	return s.c.searchLoop(ctx, t, build, func() bool { return !s.refreshd }, func(m syncMessage) (bool, replink.Event, error) {
		if !s.c.dialect.changesOnly && !s.refreshd {
			s.c.dialect.learn(&m)
		}
		switch m.op {
		case opSearchEntry:
			if m.state == nil {
				return true, replink.Exception, protocolErrorf("entry %q without a sync state control", m.entry.DN)
			}
			if err := s.entry(ctx, m.entry, m.state); err != nil {
				ev, err := failure(err)
				return true, ev, err
			}
		case opIntermediate:
			if m.info != nil {
				if err := s.info(ctx, m.info); err != nil {
					ev, err := failure(err)
					return true, ev, err
				}
			}
		case opSearchDone:
			ev, err := s.searchDone(ctx, m, mode)
			return true, ev, err
		}
		return false, 0, nil
	})
}

// searchLoop runs one sync search, whose request build encodes, on t: it
// hands each message to handle until handle says the search is over, and
// returns the event handle gave, or 0 when the session stops or the
// connection is lost (the tap reports that). While refreshing says so, a
// provider silent for Config.RefreshStall ends it.
func (c *conn) searchLoop(ctx context.Context, t *tap, build func(id int64) ([]byte, error), refreshing func() bool,
	handle func(m syncMessage) (done bool, ev replink.Event, err error)) (replink.Event, error) {
	cfg := c.cfg
	st, err := t.startSync(build)
	if err != nil {
		return replink.Exception, fmt.Errorf("sync search: %w", err)
	}
	defer t.closeStream(st)
	var stall *time.Timer // the refresh stage only: silence in persist is normal
	if cfg.RefreshStall > 0 {
		stall = time.NewTimer(cfg.RefreshStall)
		defer stall.Stop()
	}
	for {
		if !refreshing() {
			stall = nil
		}
		frame, err := t.next(ctx, st, stall, cfg.RefreshStall)
		if errors.Is(err, errStalled) {
			return replink.Exception, fmt.Errorf("%w: nothing from the provider's sync search for %v, though the connection is alive (389-ds stops a sync search silently at its size limit: give the replication identity nsSizeLimit, nsTimeLimit and nsLookThroughLimit of -1)", ErrRefreshStalled, cfg.RefreshStall)
		}
		if err != nil {
			return 0, nil // stopping, or the connection is lost: the tap reports that
		}
		m, err := decodeSyncMessage(frame)
		if err != nil {
			return replink.Exception, err
		}
		if done, ev, err := handle(m); done {
			return ev, err
		}
	}
}

// failure maps what stopped a message to the event it means: a base seen
// replaced asks for a reload, like e-syncRefreshRequired; deletions the
// guard held wait for an admin; anything else is an exception.
func failure(err error) (replink.Event, error) {
	switch {
	case errors.Is(err, ErrBaseReplaced):
		return replink.RefreshRequired, err
	case errors.Is(err, ErrDeletionsHeld):
		return replink.DeletionsHeld, err
	}
	return replink.Exception, err
}

// presentPhaseEnds reports whether the end of a refreshOnly refresh, with
// its Sync Done's refreshDeletes, licenses a prune: RFC 4533 says so when
// refreshDeletes is FALSE, unless the refresh was a delete phase, or came
// from a provider whose incremental refreshes name only what changed.
func (s *session) presentPhaseEnds(refreshDeletes bool) bool {
	if refreshDeletes || s.deleting {
		return false
	}
	return s.reload || !s.c.dialect.changesOnly
}

// checkBase stops the session when the search base itself is deleted or
// replaced by another entry: see ErrBaseReplaced. During a reload the base
// entry's UUID is adopted instead, since a reload names the present base.
func (s *session) checkBase(id uuid.UUID, dn string, deleted bool) error {
	base := s.c.baseID
	switch {
	case deleted && id == base && base != uuid.Nil:
		return fmt.Errorf("%w: entry %s deleted or moved away", ErrBaseReplaced, id)
	case deleted || !s.c.isBase(dn):
		return nil
	case s.reload && !s.refreshd, base == uuid.Nil:
		s.c.baseID = id
		s.c.st.rememberBase(s.c.digest, id)
		return nil
	case id != base:
		return fmt.Errorf("%w: %s is now entry %s, was %s", ErrBaseReplaced, dn, id, base)
	}
	return nil
}

// searchDone handles the end of the search: a failure to classify, or the
// end of a refreshOnly refresh, or the provider ending the persist stage.
func (s *session) searchDone(ctx context.Context, m syncMessage, mode ldap.ControlSyncRequestMode) (replink.Event, error) {
	err := m.err
	switch {
	case ctx.Err() != nil:
		return 0, nil
	case ldap.IsErrorWithCode(err, resultSyncRefreshRequired):
		return replink.RefreshRequired, err
	case ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) && providerBehind(err):
		return replink.Exception, fmt.Errorf("%w: %w", ErrProviderBehind, err)
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultSizeLimitExceeded, ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultAdminLimitExceeded):
		return replink.Exception, fmt.Errorf("sync search: %w (the provider limits the replication identity's searches: give it unlimited size and time limits: slapd's 'limits dn.exact=... size=unlimited time=unlimited', 389-ds's nsSizeLimit, nsTimeLimit and nsLookThroughLimit of -1 on its entry)", err)
	case err != nil:
		return replink.Exception, fmt.Errorf("sync search: %w", err)
	}
	if m.done != nil {
		if err := s.syncDone(ctx, m.done, mode); err != nil {
			return failure(err)
		}
	}
	if mode == ldap.SyncRequestModeRefreshOnly {
		if !s.refreshd { // SearchResultDone without a sync done control
			if err := s.endRefresh(ctx, nil, s.presentPhaseEnds(false)); err != nil {
				return failure(err)
			}
		}
		return 0, nil // refresh-done already reported
	}
	return replink.ConnectionClosed, ErrPersistEnded
}

// loadCookie returns the cookie to send, or none: after refresh-required,
// after an admin's Link.Reload, and when the stored cookie was issued for
// other content. A dropped cookie is erased from the store first, so a
// reload cut short is a reload again next time.
func (s *session) loadCookie(ctx context.Context) ([]byte, error) {
	if err := s.c.st.enter(ctx); err != nil {
		return nil, err
	}
	defer s.c.st.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := s.c.cfg
	if !s.req.DropCookie && !s.c.st.reload.Load() {
		stored, err := cfg.Cookies.Load()
		if err != nil {
			return nil, fmt.Errorf("cookie store: %w", err)
		}
		cookie, ok, ahead := unbindCookie(s.c.bound(), stored)
		s.c.dialect.learnCookie(cookie)
		switch {
		case ok && ahead && s.c.dialect.changesOnly:
			cfg.Logger.Warn("the copy may hold changes past the stored cookie (the link stopped without saving the cookie that covers them), and this provider does not report an entry added and deleted since a cookie: reloading in full", "provider", s.c.dialect.vendor, "base", cfg.BaseDN)
		case ok:
			s.c.stored, s.c.marked = cookie, ahead
			return cookie, s.countCopy()
		default:
			cfg.Logger.Warn("stored cookie belongs to other content (base, scope, filter or attributes changed, or the base entry was replaced): reloading in full", "base", cfg.BaseDN)
		}
	}
	s.c.cookie, s.c.cookieSet = nil, false
	if err := cfg.Cookies.Save(nil); err != nil {
		return nil, fmt.Errorf("cookie store: %w", err)
	}
	s.c.stored, s.c.marked = nil, false
	s.c.st.reload.Store(false)
	return nil, s.countCopy()
}

// countCopy notes whether the copy holds nothing as the session begins,
// if the handler can count it (Counter). It is asked after the cookie
// store's Load or Save, so a store that is also the handler has dropped
// or committed what the last session left pending.
func (s *session) countCopy() error {
	s.empty = false
	counter, ok := s.c.handler.(Counter)
	if !ok {
		return nil
	}
	n, err := counter.Len()
	if err != nil {
		return fmt.Errorf("handler: %w", err)
	}
	s.empty = n == 0
	return nil
}

// providerBehind recognises slapd's "consumer state is newer than provider".
func providerBehind(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "newer than provider")
}

// apply hands one change to the handler and notes the cookie that covers
// it, under the link's gate. No change starts once the session is stopping.
func (s *session) apply(ctx context.Context, ch Change, cookie []byte) error {
	if err := s.c.st.enter(ctx); err != nil {
		return err
	}
	defer s.c.st.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.c.markAheadLocked(); err != nil {
		return err
	}
	if err := s.c.handler.Apply(ctx, ch); err != nil {
		return &HandlerError{Change: ch, Err: err}
	}
	if cookie == nil {
		s.c.uncovered = true // until a cookie comes after it
	}
	return s.noteLocked(cookie, false)
}

// note records a cookie that came without a change.
func (s *session) note(ctx context.Context, cookie []byte, force bool) error {
	if cookie == nil && !force {
		return nil
	}
	if err := s.c.st.enter(ctx); err != nil {
		return err
	}
	defer s.c.st.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.noteLocked(cookie, force)
}

// noteLocked records cookie as the newest applied one, held back until the
// refresh it belongs to ends: until then nobody knows whether it is a
// present phase (its first messages may be changed entries, the first
// carrying the cookie), and a restart from a cookie taken inside a present
// phase, a reload, or before deferred deletions would never learn what the
// rest implied. The caller holds the gate.
func (s *session) noteLocked(cookie []byte, force bool) error {
	if !s.refreshd {
		if cookie != nil {
			s.held = cookie
		}
		return nil
	}
	return s.c.recordLocked(cookie, force)
}

// entry applies one search result entry with its sync state control.
func (s *session) entry(ctx context.Context, e *ldap.Entry, st *ldap.ControlSyncState) error {
	var ch Change
	switch st.State {
	case ldap.SyncStatePresent:
		s.see(st.EntryUUID)
		s.present = s.present || !s.refreshd
		return s.note(ctx, st.Cookie, false)
	case ldap.SyncStateAdd, ldap.SyncStateModify:
		if err := s.checkBase(st.EntryUUID, e.DN, false); err != nil {
			return err
		}
		s.see(st.EntryUUID)
		ch = Change{Op: Upsert, UUID: st.EntryUUID, DN: e.DN, Entry: e}
		if err := s.withMods(ctx, &ch); err != nil {
			return err
		}
	case ldap.SyncStateDelete:
		if err := s.checkBase(st.EntryUUID, e.DN, true); err != nil {
			return err
		}
		if !s.refreshd {
			s.deleting = true
			return s.deferDelete(ctx, st.EntryUUID, st.Cookie)
		}
		ch = Change{Op: Delete, UUID: st.EntryUUID, DN: e.DN}
	default:
		return protocolErrorf("entry %q: unknown sync state %d", e.DN, st.State)
	}
	return s.apply(ctx, ch, st.Cookie)
}

// info handles a Sync Info intermediate response.
func (s *session) info(ctx context.Context, si *ldap.ControlSyncInfo) error {
	switch {
	case si.NewCookie != nil:
		return s.note(ctx, si.NewCookie.Cookie, false)
	case s.refreshd && (si.RefreshDelete != nil || si.RefreshPresent != nil):
		// The persist stage has no phases: whatever such a message says,
		// it carries at most a cookie, and licenses no prune (the refresh
		// that could have implied deletions is over).
		if si.RefreshDelete != nil {
			return s.note(ctx, si.RefreshDelete.Cookie, false)
		}
		return s.note(ctx, si.RefreshPresent.Cookie, false)
	case si.RefreshDelete != nil:
		if si.RefreshDelete.RefreshDone {
			return s.endRefresh(ctx, si.RefreshDelete.Cookie, false)
		}
		s.deleting = true
		return s.note(ctx, si.RefreshDelete.Cookie, false)
	case si.RefreshPresent != nil:
		// The present phase is over: what was not named is gone.
		if err := s.collectUnseen(ctx); err != nil {
			return err
		}
		if si.RefreshPresent.RefreshDone {
			return s.endRefresh(ctx, si.RefreshPresent.Cookie, false)
		}
		return s.note(ctx, si.RefreshPresent.Cookie, false)
	case si.SyncIdSet != nil:
		if !si.SyncIdSet.RefreshDeletes {
			for _, id := range si.SyncIdSet.SyncUUIDs {
				s.see(id)
			}
			s.present = s.present || !s.refreshd
			return s.note(ctx, si.SyncIdSet.Cookie, false)
		}
		s.deleting = s.deleting || !s.refreshd
		for _, id := range si.SyncIdSet.SyncUUIDs {
			if err := s.checkBase(id, "", true); err != nil {
				return err
			}
			if !s.refreshd {
				s.deferred[id] = struct{}{}
				continue
			}
			if err := s.apply(ctx, Change{Op: Delete, UUID: id}, nil); err != nil {
				return err
			}
		}
		return s.note(ctx, si.SyncIdSet.Cookie, false)
	}
	return protocolErrorf("empty sync info message")
}

// syncDone handles the Sync Done control of a SearchResultDone. In
// refreshOnly, and in refreshAndPersist before the refresh ended, it ends
// the refresh. In the persist stage it only means the provider ended the
// session (RFC 4533 §3.4): its cookie covers what came before, and nothing
// may be pruned, since no present phase took place.
func (s *session) syncDone(ctx context.Context, ctl *ldap.ControlSyncDone, mode ldap.ControlSyncRequestMode) error {
	if s.refreshd && mode == ldap.SyncRequestModeRefreshAndPersist {
		return s.note(ctx, ctl.Cookie, true)
	}
	return s.endRefresh(ctx, ctl.Cookie, s.presentPhaseEnds(ctl.RefreshDeletes))
}

// endRefresh finishes a refresh: present-phase deletions, a forced cookie
// save, and refresh-done, in that order, so a restart after refresh-done
// never misses a deletion. A prune happens only after a complete present
// phase, or at the end of a reload, which names everything.
func (s *session) endRefresh(ctx context.Context, cookie []byte, present bool) error {
	switch {
	case (present || s.reload) && !s.pruned:
		if err := s.collectUnseen(ctx); err != nil {
			return err
		}
	case s.listing != nil && !s.pruned && !s.reload && !s.refreshd:
		if err := s.audit(ctx); err != nil {
			return err
		}
	}
	s.listing = nil
	if err := s.applyDeferred(ctx); err != nil {
		return err
	}
	if cookie == nil {
		cookie = s.held
	}
	first := !s.refreshd
	s.refreshd, s.held = true, nil
	s.seen = nil // see records nothing from now on: let the map go, not just its entries
	if err := s.note(ctx, cookie, true); err != nil {
		return err
	}
	if first && !s.quiet {
		s.c.sink.Post(replink.RefreshDone, nil)
	}
	return nil
}

// see records an entry the provider named during the refresh; the persist
// stage that follows needs no such record, so it does not grow one. An
// entry named after its deletion in the same refresh exists after all.
func (s *session) see(id uuid.UUID) {
	if !s.refreshd {
		if !s.empty {
			s.seen[id] = struct{}{}
		}
		delete(s.deferred, id)
	}
}

// deferDelete notes a deletion the provider named during the refresh, to
// be applied when it ends, and the cookie that came with it.
func (s *session) deferDelete(ctx context.Context, id uuid.UUID, cookie []byte) error {
	s.deferred[id] = struct{}{}
	return s.note(ctx, cookie, false)
}

// known lists what the copy holds, under the gate.
func (s *session) known(ctx context.Context) ([]uuid.UUID, error) {
	if err := s.c.st.enter(ctx); err != nil {
		return nil, err
	}
	known, err := s.c.handler.Known(ctx)
	s.c.st.leave()
	if err != nil {
		return nil, &HandlerError{Change: Change{Op: Delete}, Err: err}
	}
	return known, nil
}

// collectUnseen ends a present phase (or a reload): whatever the copy holds
// that the provider did not name is to be deleted when the refresh ends.
func (s *session) collectUnseen(ctx context.Context) error {
	if s.empty {
		// Every entry the copy holds came in this refresh, named by the
		// provider: none is unseen.
		s.pruned, s.present = true, false
		return nil
	}
	known, err := s.known(ctx)
	if err != nil {
		return err
	}
	for _, id := range known {
		if _, ok := s.seen[id]; !ok {
			s.deferred[id] = struct{}{}
		}
	}
	clear(s.seen)
	s.pruned, s.present = true, false
	return nil
}

// applyDeferred applies the refresh's deletions, unless the deletion guard
// holds them: then none is applied and the session ends with a
// *DeletionsHeldError.
func (s *session) applyDeferred(ctx context.Context) error {
	if len(s.deferred) == 0 {
		return nil
	}
	if err := s.guard(ctx); err != nil {
		return err
	}
	for id := range s.deferred {
		if err := s.apply(ctx, Change{Op: Delete, UUID: id}, nil); err != nil {
			return err
		}
		delete(s.deferred, id)
	}
	return nil
}

// guard counts the deferred deletions against the copy they would apply to.
// Only past the guard's floor is the copy listed, so an ordinary refresh
// costs nothing more.
func (s *session) guard(ctx context.Context) error {
	g := s.c.cfg.DeletionGuard
	if g.Share < 0 || len(s.deferred) <= g.Floor {
		return nil
	}
	known, err := s.known(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, id := range known {
		if _, ok := s.deferred[id]; ok {
			n++
		}
	}
	if n <= g.Floor || float64(n) <= g.Share*float64(len(known)) {
		return nil
	}
	if s.c.st.approve(n) {
		s.c.cfg.Logger.Warn("applying deletions an admin approved", "deletions", n, "copy", len(known))
		return nil
	}
	held := &DeletionsHeldError{Deletions: n, Copy: len(known), Guard: g}
	s.c.st.hold(held)
	return held
}
