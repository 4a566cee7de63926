package ldapadapter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// Adapter connects a link's state machine to one LDAP provider.
type Adapter struct {
	cfg    Config
	digest string // of the content the cookie is bound to
	state  *linkState
	turn   atomic.Int64 // which of cfg.URLs the next connection tries
}

// New validates cfg and returns an adapter for fsm.New.
func New(cfg Config) (*Adapter, error) { return newAdapter(cfg, newLinkState()) }

// newAdapter is New for a link whose connections share st.
func newAdapter(cfg Config, st *linkState) (*Adapter, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.Cookies == nil {
		c.Cookies = &st.cookies
	}
	return &Adapter{cfg: c, digest: contentDigest(&c), state: st}, nil
}

// Connect implements fsm.Adapter: it dials, binds and checks the base DN on
// a goroutine of its own and reports the outcome on sink.
func (a *Adapter) Connect(ctx context.Context, sink fsm.Sink) fsm.Conn {
	turn := a.turn.Load()
	c := &conn{cfg: &a.cfg, a: a, turn: turn, url: a.cfg.URLs[turn%int64(len(a.cfg.URLs))],
		digest: a.digest, st: a.state, handler: a.state.handler(a.cfg.Handler), sink: sink, started: time.Now()}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.connect()
	}()
	return c
}

// conn is one connection and its sync session; it implements fsm.Conn.
type conn struct {
	cfg     *Config
	a       *Adapter
	turn    int64   // the adapter's turn when this connection was made
	url     string  // the provider this connection is to
	digest  string  // of the content (base, scope, filter, attributes)
	binding string  // digest and the base entry's entryUUID, once known; guarded by mu
	dialect dialect // what the provider does that RFC 4533 does not say
	// baseID is the base entry's UUID as the sync protocol names it, or
	// zero: set at connect, adopted from a reload, read by one session at a time.
	baseID  uuid.UUID
	st      *linkState
	handler Handler
	sink    fsm.Sink
	started time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // connect, session and probe goroutines
	// listed: a session on this connection listed the content before
	// its refresh (audit.go); the sessions after it need not, since a
	// provider that restarts ends the connection. The sessions of a
	// connection run one after another, and
	// only they touch it.
	listed bool

	mu         sync.Mutex
	closed     bool
	tap        *tap
	lc         *ldap.Conn
	stopSync   context.CancelFunc
	syncDone   chan struct{}
	nextUnbind int64

	// Guarded by st.gate.
	cookie    []byte // the cookie of the last change applied
	cookieSet bool   // cookie not saved yet
	// uncovered: a change was applied after the last cookie received. That
	// cookie must not be saved then: a restart from it would be answered
	// without a change the provider folded away (an entry added and
	// deleted since the cookie is not mentioned at all), and the copy
	// would keep what the provider no longer has.
	uncovered bool
	savedAt   time.Time
	// stored is the provider cookie the cookie store holds, and marked
	// whether it is stored marked ahead of the copy (see aheadMark).
	stored []byte
	marked bool
	flush  *time.Timer // saves a recorded cookie once it is due
	// fenced is set once Close has flushed the cookie or given up on the
	// handler: from then on this connection saves nothing, so a handler it
	// abandoned cannot move the cookie past changes it never finished.
	fenced atomic.Bool
}

// classify maps a bind or base-check failure to the event it means: a
// refusal the provider will repeat (bad credentials, no base) is permanent.
func classify(op string, err error) (replink.Event, error) {
	var le *ldap.Error
	if errors.As(err, &le) && le.ResultCode != 0 && le.ResultCode != ldap.ErrorNetwork {
		re := &ResultError{Op: op, Code: int64(le.ResultCode), Message: le.Err.Error()}
		switch le.ResultCode {
		case ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
			ldap.LDAPResultInsufficientAccessRights, ldap.LDAPResultNoSuchObject,
			ldap.LDAPResultInvalidDNSyntax, ldap.LDAPResultAuthMethodNotSupported,
			ldap.LDAPResultConfidentialityRequired:
			return replink.ConnectRefused, fmt.Errorf("%w: %w", ErrRefused, re)
		}
		return replink.ConnectFailed, re
	}
	return replink.ConnectFailed, fmt.Errorf("%s: %w", op, err)
}

func (c *conn) connect() {
	if g := c.st.connects; g != nil {
		leave, err := g.enter(c.ctx, c.url)
		if err != nil {
			return // given up on: the machine's connect timer or close says why
		}
		defer leave()
	}
	raw, err := dial(c.ctx, c.cfg, c.url)
	if err != nil {
		if c.ctx.Err() == nil {
			ev := replink.ConnectFailed
			var re *ResultError
			var ve *tls.CertificateVerificationError
			switch {
			case errors.As(err, &re): // StartTLS refused
				ev, err = replink.ConnectRefused, fmt.Errorf("%w: %w", ErrRefused, err)
			case errors.As(err, &ve):
				// Our trust settings reject the provider: retrying cannot
				// help until someone changes them, so wait for an admin.
				ev, err = replink.ConnectRefused, fmt.Errorf("%w: %w", ErrUntrusted, err)
			}
			c.sink.Post(ev, err)
		}
		return
	}
	t := newTap(raw, c.sink, c.cfg.MaxMessage, c.cfg.QueueBytes, &c.st.received, c.st.poller)
	_, isTLS := raw.(*tls.Conn)
	lc := ldap.NewConn(ldapSide{t}, isTLS)
	lc.Start()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		t.shutdown()
		lc.Close()
		return
	}
	c.tap, c.lc = t, lc
	c.mu.Unlock()
	// Bind and base check have no context in go-ldap; Close unblocks them by
	// closing the socket.
	stop := context.AfterFunc(c.ctx, t.shutdown)
	defer stop()

	switch {
	case c.cfg.SASLExternal:
		err = lc.ExternalBind()
	case c.cfg.BindDN != "":
		_, err = lc.SimpleBind(&ldap.SimpleBindRequest{Username: c.cfg.BindDN, Password: c.cfg.Password})
	}
	if err != nil {
		c.failConnect("bind", err)
		return
	}
	// The root DSE says which implementation this is; a server that hides
	// it is taken at RFC 4533's word.
	if res, err := lc.Search(vendorRequest()); err == nil && len(res.Entries) == 1 {
		c.dialect = dialectOf(res.Entries[0])
	} else if f := c.tap.failure(); f != nil {
		c.failConnect("root DSE", err)
		return
	}
	// The base check also reads the base entry's identity: the cookie is
	// bound to it, because a base replaced while no persistent search was
	// open (so no e-syncRefreshRequired) is answered from the old cookie
	// without the deletion of anything under the old base.
	res, err := lc.Search(baseRequest(c.cfg.BaseDN))
	if err != nil {
		c.failConnect("base "+c.cfg.BaseDN, err)
		return
	}
	if len(res.Entries) == 1 {
		id, syncID := baseIdentity(res.Entries[0])
		c.baseID = syncID
		if id != "" {
			c.mu.Lock()
			c.binding = c.digest + " " + id
			c.mu.Unlock()
		}
	}
	if c.baseID == uuid.Nil {
		c.baseID = c.locateBase() // hidden: what an earlier reload taught
	} else {
		c.st.rememberBase(c.digest, c.baseID)
	}
	c.sink.Post(replink.Connected, nil)
	t.arm()
}

// followedBase says whether this link has followed its base before: it
// learnt the base entry in this process, or holds a cookie for it. Its base
// missing is then a moment in the provider's life (a base replaced by a
// delete and an add, a restore under way), not a mistake in the
// configuration.
func (c *conn) followedBase() bool {
	if c.st.knownBase(c.digest) != uuid.Nil {
		return true
	}
	cookie, err := c.cfg.Cookies.Load()
	return err == nil && len(cookie) > 0
}

// locateBase is the base entry's UUID when the provider hides it: as an
// earlier reload in this process learnt it, else as the copy holds it.
func (c *conn) locateBase() uuid.UUID {
	if id := c.st.knownBase(c.digest); id != uuid.Nil {
		return id
	}
	loc, ok := c.handler.(EntryLocator)
	if !ok || c.st.enter(c.ctx) != nil {
		return uuid.Nil
	}
	defer c.st.leave()
	id, found, err := loc.EntryAt(c.ctx, c.cfg.BaseDN)
	if err != nil || !found {
		return uuid.Nil
	}
	return id
}

func (c *conn) failConnect(op string, err error) {
	if c.ctx.Err() != nil {
		return // we are closing
	}
	if f := c.tap.failure(); f != nil { // the socket failed under the bind
		ev := replink.ConnectFailed
		if f.ev == replink.Exception {
			ev = replink.Exception
		}
		c.sink.Post(ev, fmt.Errorf("%s: %w", op, f.cause))
		return
	}
	ev, cause := classify(op, err)
	var re *ResultError
	if ev == replink.ConnectRefused && errors.As(cause, &re) && re.Code == int64(ldap.LDAPResultNoSuchObject) && strings.HasPrefix(op, "base ") && c.followedBase() {
		// The base is missing from a provider the link has followed it
		// on: a moment of the provider's (ErrBaseGone), polled for.
		ev, cause = replink.ConnectFailed, fmt.Errorf("%w: %w", ErrBaseGone, re)
	}
	c.sink.Post(ev, cause)
}

// Peer is the provider this connection is to, for transitions and status.
func (c *conn) Peer() string { return c.url }

// Provider is the provider the adapter's next (or current) connection is to.
func (a *Adapter) Provider() string {
	return a.cfg.URLs[a.turn.Load()%int64(len(a.cfg.URLs))]
}

// LastRead implements fsm.Conn.
func (c *conn) LastRead() time.Time {
	c.mu.Lock()
	t := c.tap
	c.mu.Unlock()
	if t == nil {
		return c.started
	}
	return t.LastRead()
}

// Persisting implements fsm.Persister: once a syncrepl link persists,
// go-ldap has nothing left to do on this connection (the sync search, the
// probes and the unbind are the tap's), so its reader and processor
// goroutines and its buffers go. Delta-syncrepl and DirSync keep it: they
// still search with it while persisting.
func (c *conn) Persisting() {
	c.mu.Lock()
	if t := c.tap; t != nil {
		t.pollable.Store(true) // its waits go to the poller: see poller
	}
	lc := c.lc
	if c.cfg.Mode == ModeDirSync || c.cfg.LogBase != "" || c.closed || lc == nil {
		c.mu.Unlock()
		return
	}
	c.lc = nil
	c.wg.Add(1) // under mu, so Close, which sets closed under mu first, waits for it
	c.mu.Unlock()
	go func() { defer c.wg.Done(); lc.Close() }()
}

// Probe implements fsm.Conn: one keepalive request on the same connection,
// written so that a full send buffer cannot block the machine (in place
// when the socket takes it at once, else by a short-lived goroutine). The
// answer is swallowed by the tap.
func (c *conn) Probe() {
	c.mu.Lock()
	t, closed := c.tap, c.closed
	c.mu.Unlock()
	if t == nil || closed {
		return
	}
	if c.cfg.Probe != "rootdse" {
		t.sendWhoAmI(&c.wg, 5*time.Second)
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t.probe(rootDSERequest, 5*time.Second) // an error here is a dead link: the keepalive will say so
	}()
}

// Close implements fsm.Conn. It returns within Config.StopTimeout whatever
// the handler does: the session stops before the next change (no change
// starts once Close has begun), the cookie of the last applied change is
// saved, and a graceful close sends an unbind before the socket closes. A
// handler still busy when the time is up is abandoned with a warning; its
// change is not covered by any saved cookie, so it comes again next time.
func (c *conn) Close(graceful bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if !graceful {
		// Lost, or never reached: the next connection tries the next
		// provider, if there are several.
		c.a.turn.CompareAndSwap(c.turn, c.turn+1)
	}
	c.closed = true
	t, lc, done := c.tap, c.lc, c.syncDone
	c.mu.Unlock()
	bound, cancel := context.WithTimeout(context.Background(), c.cfg.StopTimeout)
	defer cancel()
	c.cancel()
	if done != nil {
		select {
		case <-done:
		case <-bound.Done():
		}
	}
	select {
	case c.st.gate <- struct{}{}:
		c.fenced.Store(true)
		if err := c.saveLocked(true); err != nil {
			c.cfg.Logger.Error("cookie not saved on close", "err", err)
		}
		c.st.leave()
	case <-bound.Done():
		c.fenced.Store(true)
		c.cfg.Logger.Warn("handler still busy at close: abandoned, its change will be replayed", "stop_timeout", c.cfg.StopTimeout)
	}
	if t != nil {
		if graceful {
			left := time.Until(deadlineOf(bound))
			t.probe(unbindRequest, min(left, time.Second))
		} else {
			resetOnClose(t.conn)
		}
		t.shutdown()
	}
	if lc != nil {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); lc.Close() }()
	}
	waited := make(chan struct{})
	go func() { c.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-bound.Done():
		c.cfg.Logger.Warn("connection goroutines still running at close: abandoned", "stop_timeout", c.cfg.StopTimeout)
	}
}

// resetOnClose makes closing c send a reset rather than a FIN. A lost
// connection is closed that way: a hung or vanished provider never answers
// a FIN, so the socket would linger for tcp_fin_timeout holding its local
// port, and when thousands of links lose one provider at once, thousands
// of such orphans crowd the ephemeral port range that the same links'
// reconnects must search (the kernel's connect(2) then burns the CPU the
// links still persisting need to detect the loss in time).
func resetOnClose(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func unbindRequest(id int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	p.AppendChild(ber.Encode(ber.ClassApplication, ber.TypePrimitive, 2, nil, "Unbind Request"))
	return p.Bytes()
}

// bound is what the connection's cookies are bound to: the content, and
// the base entry the provider has under that name, when it said.
func (c *conn) bound() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.binding == "" {
		return c.digest
	}
	return c.binding
}

// recordLocked notes the cookie of a change that has been applied and
// saves it if CookieFlushInterval has passed or force is set. The caller
// holds the link's gate.
func (c *conn) recordLocked(cookie []byte, force bool) error {
	if cookie != nil {
		c.cookie, c.cookieSet, c.uncovered = cookie, true, false
	}
	if !c.cookieSet || c.uncovered {
		return nil
	}
	if wait := c.cfg.CookieFlushInterval - time.Since(c.savedAt); !force && wait > 0 {
		// Not due yet: save it then, even if no change comes to do it.
		if c.flush == nil {
			c.flush = time.AfterFunc(wait, c.flushDue)
		}
		return nil
	}
	return c.saveLocked(false)
}

// flushDue saves the cookie recorded since the last save, when the stream
// went quiet before anything else saved it.
func (c *conn) flushDue() {
	if c.st.enter(c.ctx) != nil {
		return // closing: Close saves
	}
	defer c.st.leave()
	c.flush = nil
	if err := c.saveLocked(false); err != nil {
		c.cfg.Logger.Error("cookie not saved", "err", err)
	}
}

// saveLocked writes the last applied cookie, bound to the link's content,
// unless this connection is fenced off; closing writes once more while
// fencing. The caller holds the link's gate.
func (c *conn) saveLocked(closing bool) error {
	if c.flush != nil {
		c.flush.Stop()
		c.flush = nil
	}
	if !c.cookieSet || c.uncovered || (c.fenced.Load() && !closing) {
		return nil
	}
	c.cookieSet = false
	c.savedAt = time.Now()
	if err := c.cfg.Cookies.Save(bindCookie(c.bound(), c.cookie)); err != nil {
		return fmt.Errorf("cookie store: %w", err)
	}
	c.stored, c.marked = c.cookie, false
	return nil
}

// markAheadLocked marks the stored cookie before the first change past it
// reaches the handler, unless the cookie store commits cookies with the
// changes (then the copy is never ahead of it). The caller holds the gate.
func (c *conn) markAheadLocked() error {
	if c.marked || c.stored == nil || c.fenced.Load() {
		return nil
	}
	if _, ok := c.cfg.Cookies.(TransactionalCookieStore); ok {
		return nil
	}
	if err := c.cfg.Cookies.Save(markAhead(c.bound(), c.stored)); err != nil {
		return fmt.Errorf("cookie store: %w", err)
	}
	c.marked = true
	return nil
}

var _ net.Conn = (*tap)(nil)
