package ldapadapter

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// ErrPersistEnded is the cause of connection-closed when the provider ends
// a refreshAndPersist search with success, which it does only when leaving.
var ErrPersistEnded = errors.New("provider ended the persistent search")

// resultSyncRefreshRequired is e-syncRefreshRequired (RFC 4533 2.5).
const resultSyncRefreshRequired = 4096

// Sync implements fsm.Conn: it starts the sync search on the bound
// connection, after any previous one on it has stopped.
func (c *conn) Sync(req fsm.SyncRequest) {
	c.mu.Lock()
	if c.closed || c.lc == nil {
		c.mu.Unlock()
		return
	}
	prevStop, prevDone := c.stopSync, c.syncDone
	ctx, stop := context.WithCancel(c.ctx)
	done := make(chan struct{})
	c.stopSync, c.syncDone = stop, done
	lc := c.lc
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
		s := &session{c: c, req: req, seen: map[uuid.UUID]struct{}{}}
		if ev, cause := s.run(ctx, lc); ev != 0 && ctx.Err() == nil && !c.tap.dead() {
			c.sink.Post(ev, cause)
		}
	}()
}

// session is one sync search: one refresh, and in refreshAndPersist the
// persist phase after it.
type session struct {
	c        *conn
	req      fsm.SyncRequest
	seen     map[uuid.UUID]struct{} // present phase: entries the provider still has
	refreshd bool                   // refresh-done already reported
	reload   bool                   // no cookie: the refresh names every entry the provider has
	pruned   bool                   // unseen entries already deleted in this refresh
}

// run streams the search and returns the event that ended it, or 0.
func (s *session) run(ctx context.Context, lc *ldap.Conn) (replink.Event, error) {
	cfg := s.c.cfg
	var cookie []byte
	var err error
	if s.req.DropCookie {
		s.c.mu.Lock()
		s.c.cookie, s.c.cookieSet = nil, false
		s.c.mu.Unlock()
		err = cfg.Cookies.Save(nil)
	} else {
		cookie, err = cfg.Cookies.Load()
	}
	if err != nil {
		return replink.Exception, fmt.Errorf("cookie store: %w", err)
	}
	// Without a cookie the provider sends its whole content, whatever phase
	// it says it ends with, so what it did not name is gone: a consumer
	// that kept its copy across a lost or dropped cookie must prune it.
	s.reload = len(cookie) == 0
	mode := ldap.SyncRequestModeRefreshAndPersist
	if s.req.Mode == replink.RefreshOnly {
		mode = ldap.SyncRequestModeRefreshOnly
	}
	sr := ldap.NewSearchRequest(cfg.BaseDN, cfg.Scope, ldap.NeverDerefAliases, 0, 0, false, cfg.Filter, cfg.Attributes, nil)
	resp := lc.Syncrepl(ctx, sr, 64, mode, cookie, false)
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			if err := s.entry(ctx, e, resp.Controls()); err != nil {
				return replink.Exception, err
			}
			continue
		}
		for _, ctl := range resp.Controls() {
			switch ctl := ctl.(type) {
			case *ldap.ControlSyncInfo:
				if ev, err := s.info(ctx, ctl); err != nil || ev != 0 {
					return s.report(ev, err)
				}
			case *ldap.ControlSyncDone: // refreshOnly: SearchResultDone
				if err := s.endRefresh(ctx, ctl.Cookie, !ctl.RefreshDeletes); err != nil {
					return replink.Exception, err
				}
			}
		}
	}
	err = resp.Err()
	switch {
	case ctx.Err() != nil:
		return 0, nil
	case ldap.IsErrorWithCode(err, resultSyncRefreshRequired):
		return replink.RefreshRequired, err
	case err != nil:
		return replink.Exception, fmt.Errorf("sync search: %w", err)
	case mode == ldap.SyncRequestModeRefreshOnly:
		if !s.refreshd { // SearchResultDone without a sync done control
			if err := s.endRefresh(ctx, nil, true); err != nil {
				return replink.Exception, err
			}
		}
		return 0, nil // refresh-done already reported
	default:
		return replink.ConnectionClosed, ErrPersistEnded
	}
}

func (s *session) report(ev replink.Event, err error) (replink.Event, error) {
	if err != nil {
		return replink.Exception, err
	}
	return ev, nil
}

// entry applies one search result entry with its sync state control.
func (s *session) entry(ctx context.Context, e *ldap.Entry, ctls []ldap.Control) error {
	var st *ldap.ControlSyncState
	for _, c := range ctls {
		if c, ok := c.(*ldap.ControlSyncState); ok {
			st = c
		}
	}
	if st == nil {
		return protocolErrorf("entry %q without a sync state control", e.DN)
	}
	var ch Change
	switch st.State {
	case ldap.SyncStatePresent:
		s.see(st.EntryUUID)
		return s.c.setCookie(st.Cookie, false)
	case ldap.SyncStateAdd, ldap.SyncStateModify:
		s.see(st.EntryUUID)
		ch = Change{Op: Upsert, UUID: st.EntryUUID, DN: e.DN, Entry: e}
	case ldap.SyncStateDelete:
		ch = Change{Op: Delete, UUID: st.EntryUUID, DN: e.DN}
	default:
		return protocolErrorf("entry %q: unknown sync state %d", e.DN, st.State)
	}
	if err := s.c.cfg.Handler.Apply(ctx, ch); err != nil {
		return &HandlerError{Change: ch, Err: err}
	}
	return s.c.setCookie(st.Cookie, false)
}

// info handles a Sync Info intermediate response.
func (s *session) info(ctx context.Context, si *ldap.ControlSyncInfo) (replink.Event, error) {
	switch {
	case si.NewCookie != nil:
		return 0, s.c.setCookie(si.NewCookie.Cookie, false)
	case si.RefreshDelete != nil:
		if si.RefreshDelete.RefreshDone {
			return s.done(ctx, si.RefreshDelete.Cookie, false)
		}
		return 0, s.c.setCookie(si.RefreshDelete.Cookie, false)
	case si.RefreshPresent != nil:
		// The present phase is over: what was not named is gone.
		if err := s.deleteUnseen(ctx); err != nil {
			return 0, err
		}
		if si.RefreshPresent.RefreshDone {
			return s.done(ctx, si.RefreshPresent.Cookie, false)
		}
		return 0, s.c.setCookie(si.RefreshPresent.Cookie, false)
	case si.SyncIdSet != nil:
		for _, id := range si.SyncIdSet.SyncUUIDs {
			if !si.SyncIdSet.RefreshDeletes {
				s.see(id)
				continue
			}
			ch := Change{Op: Delete, UUID: id}
			if err := s.c.cfg.Handler.Apply(ctx, ch); err != nil {
				return 0, &HandlerError{Change: ch, Err: err}
			}
		}
		return 0, s.c.setCookie(si.SyncIdSet.Cookie, false)
	}
	return 0, protocolErrorf("empty sync info message")
}

// done reports refresh-done once the refresh is over in refreshAndPersist.
func (s *session) done(ctx context.Context, cookie []byte, present bool) (replink.Event, error) {
	if err := s.endRefresh(ctx, cookie, present); err != nil {
		return 0, err
	}
	return 0, nil
}

// endRefresh finishes a refresh: present-phase deletions, a forced cookie
// save, and refresh-done, in that order, so a restart after refresh-done
// never misses a deletion.
func (s *session) endRefresh(ctx context.Context, cookie []byte, present bool) error {
	if (present || s.reload) && !s.pruned {
		if err := s.deleteUnseen(ctx); err != nil {
			return err
		}
	}
	if err := s.c.setCookie(cookie, true); err != nil {
		return fmt.Errorf("cookie store: %w", err)
	}
	if !s.refreshd {
		s.refreshd = true
		clear(s.seen)
		s.c.sink.Post(replink.RefreshDone, nil)
	}
	return nil
}

// see records an entry the provider named during the refresh; the persist
// phase that follows needs no such record, so it does not grow one.
func (s *session) see(id uuid.UUID) {
	if !s.refreshd {
		s.seen[id] = struct{}{}
	}
}

func (s *session) deleteUnseen(ctx context.Context) error {
	known, err := s.c.cfg.Handler.Known(ctx)
	if err != nil {
		return &HandlerError{Change: Change{Op: Delete}, Err: err}
	}
	for _, id := range known {
		if _, ok := s.seen[id]; ok {
			continue
		}
		ch := Change{Op: Delete, UUID: id}
		if err := s.c.cfg.Handler.Apply(ctx, ch); err != nil {
			return &HandlerError{Change: ch, Err: err}
		}
	}
	clear(s.seen)
	s.pruned = true
	return nil
}
