package ldapadapter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/dn"
)

// DirSync (Active Directory, Samba AD DC). AD does not speak RFC 4533: a
// consumer polls with the DirSync control (1.2.840.113556.1.4.841), each
// round a fresh subtree search of a naming-context root carrying the
// cookie of the last one, and gets the objects changed since, keyed by
// objectGUID: a new object whole, a changed one with only its changed
// attributes, a deleted one as a tombstone (isDeleted: TRUE) under
// CN=Deleted Objects. The link merges each round into the stored entries
// and hands the handler ordinary Upserts of whole entries, with Mods
// saying what changed, and Deletes. The round's cookie is the link's
// cookie, saved by the usual machinery once the changes it covers are
// applied.
//
// DirSync has no persist stage. The refresh is rounds until the DC says it
// has no more (or one returns nothing); the persist stage keeps a change-notification search
// (1.2.840.113556.1.4.528) open on the connection, which wakes the link
// for the next round, and a timer (Config.DirSyncPoll) runs a round even
// without one: Samba notifies no deletions.

// Mode values (Config.Mode).
const (
	ModeSyncrepl = "syncrepl"
	ModeDirSync  = "dirsync"
)

const (
	oidNotification = "1.2.840.113556.1.4.528"
	// The right DirSync needs without the object-security flag.
	guidGetChanges = "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2"
	// maxDirSyncRounds bounds the rounds of one catch-up: past it the link
	// goes on in the persist stage, whose rounds continue from the cookie.
	maxDirSyncRounds = 10000
	// instanceType bit: the object heads a naming context.
	instanceTypeNCHead = 0x1
)

// ErrDirSyncRefused is wrapped by the errors of a DirSync search the
// provider refuses for a reason its configuration or rights can fix.
var ErrDirSyncRefused = errors.New("DirSync refused")

// ErrForeignCookie is the cause of the refresh-required that answers a
// cookie another DC issued: Samba accepts it and answers with everything,
// which would leave in the copy what went away meanwhile, so the link
// resynchronizes in full and prunes instead.
var ErrForeignCookie = errors.New("dirsync: the cookie was issued by another domain controller: resynchronizing in full")

// rdnOnly are the attributes DirSync never reports a change of (Samba
// never returns the RDN attribute), and those it adds by itself: a list
// made only of them selects nothing.
var rdnOnly = map[string]bool{"cn": true, "ou": true, "dc": true, "o": true, "c": true, "l": true,
	"objectguid": true, "instancetype": true, "isdeleted": true, "1.1": true, "+": true}

// dirSyncAttributes are what a DirSync link asks for: the configured list
// plus what identity, deletion and naming-context checks need.
func dirSyncAttributes(attrs []string) []string {
	if len(attrs) == 0 {
		return []string{"*"}
	}
	out := append([]string(nil), attrs...)
	for _, need := range []string{"objectGUID", "instanceType", "isDeleted"} {
		found := false
		for _, a := range attrs {
			found = found || strings.EqualFold(a, need) || a == "*"
		}
		if !found {
			out = append(out, need)
		}
	}
	return out
}

// checkDirSync validates the DirSync settings.
func (d *Config) checkDirSync() error {
	switch d.Mode {
	case "", ModeSyncrepl:
		if d.DirSyncObjectSecurity || d.DirSyncPoll != 0 || d.DirSyncNoNotification {
			return &ConfigError{Field: "Mode", Msg: "DirSyncObjectSecurity, DirSyncPoll and DirSyncNoNotification need Mode dirsync"}
		}
		return nil
	case ModeDirSync:
	default:
		return &ConfigError{Field: "Mode", Msg: fmt.Sprintf("Mode %q: want syncrepl or dirsync", d.Mode)}
	}
	if d.LogBase != "" {
		return &ConfigError{Field: "LogBase", Msg: "LogBase (delta-syncrepl) and Mode dirsync exclude each other"}
	}
	if d.Scope != 0 && d.Scope != ldap.ScopeWholeSubtree {
		return &ConfigError{Field: "Scope", Msg: "DirSync searches a whole naming context: Scope must be subtree"}
	}
	if d.Handler != nil {
		if _, ok := d.Handler.(EntryReader); !ok {
			return &ConfigError{Field: "Handler", Msg: fmt.Sprintf("Mode dirsync: the Handler (%T) cannot read back a stored entry (EntryReader), which merging DirSync's changed attributes into it needs", d.Handler)}
		}
	}
	if len(d.Attributes) > 0 {
		useful := false
		for _, a := range d.Attributes {
			useful = useful || !rdnOnly[strings.ToLower(a)]
		}
		if !useful {
			return &ConfigError{Field: "Attributes", Msg: fmt.Sprintf("Mode dirsync: Attributes %v: DirSync returns an object only when a requested attribute changed, and never returns the RDN attribute (cn, ou): ask for \"*\" (the default) or include name and the attributes you need", d.Attributes)}
		}
	}
	if d.DirSyncPoll < 0 {
		return &ConfigError{Field: "DirSyncPoll", Msg: "DirSyncPoll is negative"}
	}
	if d.DirSyncPoll == 0 {
		d.DirSyncPoll = 30 * time.Second
	}
	return nil
}

// dirSyncSession is one session of a DirSync link; s does the applying,
// the cookie holding, the prune of a reload and the deletion guard.
type dirSyncSession struct {
	s     *session
	flags int64
	// whole: the round under way is the first of a reload, whose objects
	// come whole: each replaces the stored entry instead of merging into it.
	whole bool
}

func newDirSyncSession(s *session) *dirSyncSession {
	flags := ldap.DirSyncIncrementalValues
	if s.c.cfg.DirSyncObjectSecurity {
		flags |= ldap.DirSyncObjectSecurity
	}
	return &dirSyncSession{s: s, flags: flags}
}

// run catches up (the refresh), then in refreshAndPersist keeps polling,
// woken by change notifications and by the poll timer.
func (d *dirSyncSession) run(ctx context.Context, t *tap) (replink.Event, error) {
	s, c := d.s, d.s.c
	c.st.setProtocol(ProtocolDirSync)
	cookie, err := s.loadCookie(ctx)
	if ctx.Err() != nil {
		return 0, nil
	}
	if err != nil {
		return replink.Exception, err
	}
	if len(cookie) > 0 && d.foreign(ctx, cookie) {
		return replink.RefreshRequired, ErrForeignCookie
	}
	s.reload = len(cookie) == 0
	d.whole = s.reload
	persist := s.req.Mode != replink.RefreshOnly
	var wake <-chan struct{}
	if persist && !c.cfg.DirSyncNoNotification {
		// Open before the catch-up, so no change after its last round
		// goes unnoticed.
		n := d.notify(ctx, t)
		defer n.stop(t)
		wake = n.wake
	}
	cookie, ev, err := d.catchUp(ctx, cookie)
	if ev != 0 || err != nil || ctx.Err() != nil {
		return ev, err
	}
	if err := s.endRefresh(ctx, cookie, false); err != nil {
		return failure(err)
	}
	if !persist {
		return 0, nil
	}
	poll := time.NewTimer(c.cfg.DirSyncPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, nil
		case <-wake:
		case <-poll.C:
		}
		if cookie, ev, err = d.catchUp(ctx, cookie); ev != 0 || err != nil || ctx.Err() != nil {
			return ev, err
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(c.cfg.DirSyncPoll)
	}
}

// catchUp runs rounds from cookie until the DC says it has no more
// (MS-ADTS 3.1.1.3.4.1.3: the response's MoreResults is 0) or a round
// returns no object, and returns the last cookie. Samba answers in one
// page with MoreResults always 0, so one round catches up: an empty round
// to confirm it would cost the DC another pass over the whole naming
// context (as long as the first on a large domain) and tell nothing new;
// a change made after the round wakes the persisting link again.
func (d *dirSyncSession) catchUp(ctx context.Context, cookie []byte) ([]byte, replink.Event, error) {
	for range maxDirSyncRounds {
		n, next, more, err := d.round(ctx, cookie)
		if ctx.Err() != nil {
			return nil, 0, nil
		}
		if err != nil {
			ev, err := d.classify(err, len(cookie) > 0)
			return nil, ev, err
		}
		d.whole = false
		cookie = next
		if err := d.s.note(ctx, cookie, false); err != nil {
			ev, err := failure(err)
			return nil, ev, err
		}
		if n == 0 || !more {
			return cookie, 0, nil
		}
	}
	return cookie, 0, nil
}

// round runs one DirSync search from cookie, applies what it returns and
// reports how many objects it returned, the cookie that covers them and
// whether the DC has more (its MoreResults flag).
func (d *dirSyncSession) round(ctx context.Context, cookie []byte) (n int, next []byte, more bool, err error) {
	c := d.s.c
	cfg := c.cfg
	c.mu.Lock()
	lc := c.lc
	c.mu.Unlock()
	if lc == nil {
		return 0, nil, false, errors.New("dirsync: not connected")
	}
	if cfg.RefreshStall > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.RefreshStall)
		defer cancel()
	}
	// A fresh request every round: go-ldap's DirSync ignores the cookie of
	// a request that already carries the control.
	req := ldap.NewSearchRequest(cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		cfg.Filter, dirSyncAttributes(cfg.Attributes), []ldap.Control{ldap.NewRequestControlDirSync(d.flags, 0, cookie)})
	r := lc.SearchAsync(ctx, req, 64)
	found := false
	for r.Next() {
		if e := r.Entry(); e != nil {
			n++
			if err := d.entry(ctx, e); err != nil {
				return n, nil, false, err
			}
			continue
		}
		if ctl, ok := ldap.FindControl(r.Controls(), ldap.ControlTypeDirSync).(*ldap.ControlDirSync); ok {
			next, more, found = ctl.Cookie, ctl.Flags != 0, true
		}
	}
	if err := r.Err(); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return n, nil, false, fmt.Errorf("%w: no end to a DirSync round after %v", ErrRefreshStalled, cfg.RefreshStall)
		}
		return n, nil, false, err
	}
	if ctx.Err() != nil {
		return n, nil, false, fmt.Errorf("%w: no end to a DirSync round after %v", ErrRefreshStalled, cfg.RefreshStall)
	}
	if !found || len(next) == 0 {
		return n, nil, false, protocolErrorf("DirSync search of %s ended without a DirSync response control or cookie", cfg.BaseDN)
	}
	return n, next, more, nil
}

// classify maps a failed round to the event it means, with the message an
// AD admin needs.
func (d *dirSyncSession) classify(err error, sentCookie bool) (replink.Event, error) {
	cfg := d.s.c.cfg
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode == ldap.ErrorNetwork {
		return failure(err)
	}
	msg := strings.ToLower(le.Error())
	switch {
	// Samba says "dN is not one of the naming context" with result 50,
	// the notes expected 53: the message decides.
	case strings.Contains(msg, "naming context") || (le.ResultCode == ldap.LDAPResultUnwillingToPerform && !sentCookie):
		return replink.Exception, fmt.Errorf("%w: the base %s is not a naming-context root: DirSync searches only a whole naming context (the domain's DN, DC=example,DC=com; narrow with Filter instead): %w", ErrDirSyncRefused, cfg.BaseDN, err)
	case le.ResultCode == ldap.LDAPResultInsufficientAccessRights:
		who := cfg.BindDN
		if who == "" {
			who = "the bind identity"
		}
		return replink.Exception, fmt.Errorf("%w: %s lacks the \"Replicating Directory Changes\" right (%s) on %s, which DirSync needs; grant it, or set DirSyncObjectSecurity to see only what the identity may read (on Samba only an administrator-equivalent identity sees deletions): %w", ErrDirSyncRefused, who, guidGetChanges, cfg.BaseDN, err)
	case sentCookie && (le.ResultCode == ldap.LDAPResultUnavailableCriticalExtension || le.ResultCode == ldap.LDAPResultUnwillingToPerform ||
		le.ResultCode == ldap.LDAPResultProtocolError):
		// The DC cannot use the cookie (another DC's, or damaged): a full
		// resync, which prunes what it no longer names.
		cfg.Logger.Warn("dirsync: the provider refused the cookie: resynchronizing in full", "base", cfg.BaseDN, "err", err)
		return replink.RefreshRequired, fmt.Errorf("dirsync: cookie refused: %w", err)
	case le.ResultCode == ldap.LDAPResultUnavailableCriticalExtension:
		return replink.Exception, fmt.Errorf("%w: the provider does not support the DirSync control (%s) on %s: %w", ErrDirSyncRefused, ldap.ControlTypeDirSync, cfg.BaseDN, err)
	}
	return replink.Exception, fmt.Errorf("dirsync search: %w", err)
}

// entry applies one object of a round.
func (d *dirSyncSession) entry(ctx context.Context, e *ldap.Entry) error {
	s, cfg := d.s, d.s.c.cfg
	raw := e.GetRawAttributeValue("objectGUID")
	id, err := ObjectGUID(raw)
	if err != nil {
		return protocolErrorf("DirSync object %q: %v", e.DN, err)
	}
	if it := e.GetAttributeValue("instanceType"); it != "" {
		var v int
		if _, err := fmt.Sscan(it, &v); err == nil && v&instanceTypeNCHead != 0 && !dn.Equal(e.DN, cfg.BaseDN) {
			return nil // the head of another naming context (CN=Configuration): not in a subtree search
		}
	}
	deleted := strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE")
	var old *ldap.Entry
	if deleted || !d.whole {
		// The first round of a reload brings every object whole, to
		// replace what the copy holds: only a tombstone needs to know
		// whether the copy holds the object. Reading the store for each
		// of the others cost a lookup and, with a batch in the air, a wait
		// for its commit.
		var err error
		if old, err = (&deltaSession{s: s}).stored(ctx, id); err != nil {
			return err
		}
	}
	if deleted {
		if old == nil {
			return nil // a tombstone of something the copy never held
		}
		if !s.refreshd {
			s.deferred[id] = struct{}{} // with the guard, when the refresh ends
			return nil
		}
		return s.apply(ctx, Change{Op: Delete, UUID: id, DN: old.DN}, nil)
	}
	s.see(id)
	merged, mods, err := mergeDirSync(old, e)
	if err != nil {
		return err
	}
	ch := Change{Op: Upsert, UUID: id, DN: merged.DN, Entry: merged}
	if old != nil && s.refreshd {
		ch.Mods = mods
	}
	return s.apply(ctx, ch, nil)
}

// ObjectGUID is the identity of an Active Directory object: its objectGUID
// (16 bytes as the DC sends them) read the way AD writes a GUID, the first
// three fields little-endian, so that its String is the form AD's own
// tools print (Get-ADUser, ldbsearch, samba-tool). A DirSync link keys
// the copy, the feed and the deletion guard on it.
func ObjectGUID(raw []byte) (uuid.UUID, error) {
	if len(raw) != 16 {
		return uuid.Nil, fmt.Errorf("objectGUID of %d bytes, want 16", len(raw))
	}
	var g uuid.UUID
	copy(g[:], raw)
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	return g, nil
}

// rangeOption parses an attribute description's ";range=lo-hi" option.
func rangeOption(desc string) (name string, lo, hi string, ok bool) {
	i := strings.Index(strings.ToLower(desc), ";range=")
	if i < 0 {
		return desc, "", "", false
	}
	r := desc[i+len(";range="):]
	if j := strings.IndexByte(r, ';'); j >= 0 {
		r = r[:j]
	}
	lo, hi, found := strings.Cut(r, "-")
	return desc[:i], lo, hi, found
}

// mergeDirSync applies what a DirSync round says of one object to the
// copy's entry old (nil: the object is new, or comes whole), and returns
// the new whole entry and the modifications that made it. An attribute
// without values is removed; with incremental values, "attr;range=1-1"
// adds its values and "attr;range=0-0" removes them; any other attribute
// replaces the stored one. A new DN (rename, move) also renews the RDN
// attribute's value and distinguishedName, which DirSync does not resend.
func mergeDirSync(old, delta *ldap.Entry) (*ldap.Entry, []Mod, error) {
	var e *ldap.Entry
	if old != nil {
		e = cloneEntry(old)
	} else {
		e = &ldap.Entry{}
	}
	e.DN = delta.DN
	var mods []Mod
	for _, a := range delta.Attributes {
		name, lo, hi, ranged := rangeOption(a.Name)
		vals := byteValues(a)
		cur := attribute(e, name)
		switch {
		case ranged && lo == "1" && hi == "1":
			var added [][]byte
			for _, v := range vals {
				if cur == nil {
					cur = &ldap.EntryAttribute{Name: name}
					e.Attributes = append(e.Attributes, cur)
				}
				if indexValue(cur, v, false) < 0 {
					cur.ByteValues = append(cur.ByteValues, v)
					cur.Values = append(cur.Values, string(v))
					added = append(added, v)
				}
			}
			if len(added) > 0 {
				mods = append(mods, Mod{Op: ModAdd, Attr: name, Values: added})
			}
		case ranged && lo == "0" && hi == "0":
			var gone [][]byte
			for _, v := range vals {
				if cur == nil {
					break
				}
				if i := indexValue(cur, v, false); i >= 0 {
					cur.ByteValues = append(cur.ByteValues[:i:i], cur.ByteValues[i+1:]...)
					cur.Values = append(cur.Values[:i:i], cur.Values[i+1:]...)
					gone = append(gone, v)
				}
			}
			if cur != nil && len(cur.ByteValues) == 0 {
				removeAttribute(e, name)
			}
			if len(gone) > 0 {
				mods = append(mods, Mod{Op: ModDelete, Attr: name, Values: gone})
			}
		case ranged:
			return nil, nil, protocolErrorf("DirSync object %q: attribute %q: a ranged value list other than the incremental 0-0 and 1-1 cannot be merged", delta.DN, a.Name)
		case len(vals) == 0:
			if cur != nil {
				removeAttribute(e, name)
				mods = append(mods, Mod{Op: ModDelete, Attr: name})
			}
		default:
			if cur != nil && len(missing(vals, byteValues(cur))) == 0 && len(missing(byteValues(cur), vals)) == 0 {
				continue // unchanged (objectGUID, instanceType come every time)
			}
			nv := &ldap.EntryAttribute{Name: name, ByteValues: vals, Values: stringValues(vals)}
			if cur != nil {
				*cur = *nv
			} else {
				e.Attributes = append(e.Attributes, nv)
			}
			mods = append(mods, Mod{Op: ModReplace, Attr: name, Values: vals})
		}
	}
	mods = append(mods, renewNames(e, old == nil)...)
	return e, mods, nil
}

// renewNames sets the RDN attribute's value and distinguishedName from
// the entry's DN, which DirSync never sends (Samba never returns either):
// added to a new entry, renewed on a renamed or moved one.
func renewNames(e *ldap.Entry, add bool) []Mod {
	var mods []Mod
	set := func(name, value string) {
		a := attribute(e, name)
		if a == nil && add {
			a = &ldap.EntryAttribute{Name: name}
			e.Attributes = append(e.Attributes, a)
		}
		if a == nil || (len(a.Values) == 1 && a.Values[0] == value) {
			return
		}
		a.Values, a.ByteValues = []string{value}, [][]byte{[]byte(value)}
		mods = append(mods, Mod{Op: ModReplace, Attr: a.Name, Values: a.ByteValues})
	}
	if parsed, err := ldap.ParseDN(e.DN); err == nil && len(parsed.RDNs) > 0 {
		for _, av := range parsed.RDNs[0].Attributes {
			set(strings.ToLower(av.Type), av.Value) // AD's names of cn, ou, dc

		}
	}
	set("distinguishedName", e.DN)
	return mods
}

func stringValues(vals [][]byte) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

// notifier is the change-notification search of a persisting DirSync
// link: each object it returns wakes the link for a round.
type notifier struct {
	wake   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	st     *stream
}

// notify opens the notification search on t. A DC that refuses it (too
// many on the connection, say) leaves the link polling on its timer.
func (d *dirSyncSession) notify(ctx context.Context, t *tap) *notifier {
	cfg := d.s.c.cfg
	n := &notifier{wake: make(chan struct{}, 1)}
	ctx, n.cancel = context.WithCancel(ctx)
	build := func(id int64) ([]byte, error) {
		return searchRequest(id, cfg.BaseDN, ldap.ScopeWholeSubtree, "(objectClass=*)", []string{"objectGUID"}, criticalControl(oidNotification))
	}
	st, err := t.startSync(build)
	if err != nil {
		cfg.Logger.Warn("dirsync: no change notification: polling only", "err", err, "every", cfg.DirSyncPoll)
		return n
	}
	n.st = st
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			frame, err := t.next(ctx, st, nil, 0)
			if err != nil {
				return // stopping, or the connection is lost: the tap reports that
			}
			m, err := decodeSyncMessage(frame)
			if err == nil && m.op == opSearchDone {
				cfg.Logger.Warn("dirsync: the change notification search ended: polling only", "err", m.err, "every", cfg.DirSyncPoll)
				return
			}
			signal(n.wake)
		}
	}()
	return n
}

// stop ends the notification search and abandons it on the DC, which
// holds only a few per connection.
func (n *notifier) stop(t *tap) {
	n.cancel()
	n.wg.Wait()
	if n.st == nil {
		return
	}
	t.closeStream(n.st)
	if !t.dead() {
		_ = t.probe(func(id int64) []byte { return abandonRequest(id, n.st.id) }, 5*time.Second)
	}
}

// criticalControl encodes a control without a value, marked critical.
func criticalControl(oid string) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, oid, "Control Type"))
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	return p
}

// abandonRequest encodes an Abandon of message target (RFC 4511 §4.11).
func abandonRequest(id, target int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	p.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, target, "Abandon"))
	return p.Bytes()
}

// cookieDSA is the invocationId of the DC that issued a DirSync cookie
// (MS-ADTS 3.1.1.3.4.1.3: "MSDS", version, creation time, reserved, UTD
// vector size, USN vector, then the source DSA's invocationId).
func cookieDSA(cookie []byte) (uuid.UUID, bool) {
	const at = 4 + 4 + 8 + 8 + 4 + 24
	if len(cookie) < at+16 || string(cookie[:4]) != "MSDS" {
		return uuid.Nil, false
	}
	id, err := uuid.FromBytes(cookie[at : at+16])
	return id, err == nil
}

// foreign reports whether cookie was issued by a DC other than the one
// connected: both invocationIds must be known to say so.
func (d *dirSyncSession) foreign(ctx context.Context, cookie []byte) bool {
	issuer, ok := cookieDSA(cookie)
	if !ok {
		return false
	}
	c := d.s.c
	c.mu.Lock()
	lc := c.lc
	c.mu.Unlock()
	if lc == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	one := func(base string, attr string) *ldap.Entry {
		r := lc.SearchAsync(ctx, ldap.NewSearchRequest(base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
			"(objectClass=*)", []string{attr}, nil), 1)
		var e *ldap.Entry
		for r.Next() {
			if r.Entry() != nil {
				e = r.Entry()
			}
		}
		return e
	}
	root := one("", "dsServiceName")
	if root == nil || root.GetAttributeValue("dsServiceName") == "" {
		return false
	}
	ntds := one(root.GetAttributeValue("dsServiceName"), "invocationId")
	if ntds == nil {
		return false
	}
	here, err := uuid.FromBytes(ntds.GetRawAttributeValue("invocationId"))
	if err != nil || here == issuer {
		return false
	}
	c.cfg.Logger.Warn("dirsync: the stored cookie was issued by another domain controller: resynchronizing in full", "issuer", issuer, "dc", here, "provider", c.url)
	return true
}
