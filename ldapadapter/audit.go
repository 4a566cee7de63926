package ldapadapter

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
)

// A provider's delete phase is only as good as its session log, and slapd
// keeps that log in memory. After slapd is killed (a crash, SIGKILL, power
// loss) it restarts with an empty log whose lower bound is the contextCSN
// it last checkpointed (syncprov-checkpoint), which lags the changes it
// made before the crash. A consumer whose cookie lies between that
// checkpoint and the crash is then answered with a delete phase that names
// none of the deletions made before the crash, while the changed entries
// come from the database: the refresh looks complete, and the copy keeps,
// for ever, every entry the provider deleted between the cookie and the
// crash (the soak found it: a library link away on a black-holed path
// while the writer deleted, then the provider killed and restarted). The
// consumer cannot see such a restart: the provider may crash while the
// link is stopped.
//
// So before a refresh from a cookie, the session lists the content's
// entryUUIDs with a plain search (the same base, scope and filter, the
// same identity), and when that refresh ends without a complete present
// phase it deletes whatever the copy holds that the listing lacks and the
// refresh did not name: an entry the copy held before the listing and the
// provider did not have at the listing is gone (a UUID never comes back),
// and an entry added since is named by the refresh. The deletions go
// through the deletion guard with the refresh's others. 389-ds keeps its
// changes in the Retro Changelog, on disk, and is not audited.

// contentListing is the sorted sync UUIDs of the content at one instant.
type contentListing []uuid.UUID

func (l contentListing) has(id uuid.UUID) bool {
	_, ok := slices.BinarySearchFunc(l, id, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ok
}

// listContent lists the sync UUIDs of the link's content on the
// connection's LDAP client, or returns nil with the reason it could not: no
// client (the connection persisted already), a failed or refused search
// (a size limit), an entry whose UUID the provider hides.
func (c *conn) listContent(ctx context.Context) (contentListing, error) {
	c.mu.Lock()
	lc := c.lc
	c.mu.Unlock()
	if lc == nil {
		return nil, fmt.Errorf("no LDAP client on this connection")
	}
	// A provider that never answers is the keepalive's to detect: it
	// ends the connection, and with it ctx.
	r := lc.SearchAsync(ctx, ldap.NewSearchRequest(c.cfg.BaseDN, c.cfg.Scope, ldap.NeverDerefAliases, 0, 0, false,
		c.cfg.Filter, []string{"entryUUID", "nsUniqueId"}, nil), 64)
	var ids contentListing
	for r.Next() {
		e := r.Entry()
		if e == nil {
			continue
		}
		_, id := baseIdentity(e)
		if id == uuid.Nil {
			return nil, fmt.Errorf("entry %q: no entryUUID or nsUniqueId readable", e.DN)
		}
		ids = append(ids, id)
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids, nil
}

// audit defers the deletion of what the copy holds that the listing taken
// before the refresh lacks and the refresh did not name.
func (s *session) audit(ctx context.Context) error {
	known, err := s.known(ctx)
	if err != nil {
		return err
	}
	var gone []uuid.UUID
	common := 0
	for _, id := range known {
		if s.listing.has(id) {
			common++
			continue
		}
		if _, named := s.seen[id]; !named {
			gone = append(gone, id)
		}
	}
	if len(known) > 0 && common == 0 {
		// Not one UUID in common (or an empty listing): the listing names
		// entries otherwise than the sync protocol does, or the provider
		// hid them. Trust the refresh alone rather than empty the copy.
		s.c.cfg.Logger.Warn("the content listing shares no entry with the copy: not checking the refresh's deletions against it", "base", s.c.cfg.BaseDN, "listed", len(s.listing))
		return nil
	}
	if len(gone) > 0 {
		s.c.cfg.Logger.Warn("the provider's refresh did not name deletions a listing of its content shows (a session log lost in a provider crash): deleting them", "deletions", len(gone), "base", s.c.cfg.BaseDN)
	}
	for _, id := range gone {
		s.deferred[id] = struct{}{}
	}
	return nil
}
