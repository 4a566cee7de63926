package ldapadapter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// Adapter connects a link's state machine to one LDAP provider.
type Adapter struct {
	cfg Config
}

// New validates cfg and returns an adapter for fsm.New.
func New(cfg Config) (*Adapter, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Adapter{cfg: c}, nil
}

// Connect implements fsm.Adapter: it dials, binds and checks the base DN on
// a goroutine of its own and reports the outcome on sink.
func (a *Adapter) Connect(ctx context.Context, sink fsm.Sink) fsm.Conn {
	c := &conn{cfg: &a.cfg, sink: sink, started: time.Now()}
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
	sink    fsm.Sink
	started time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // connect, session and probe goroutines

	mu         sync.Mutex
	closed     bool
	tap        *tap
	lc         *ldap.Conn
	stopSync   context.CancelFunc
	syncDone   chan struct{}
	cookie     []byte // the cookie of the last change applied
	cookieSet  bool
	savedAt    time.Time
	nextUnbind int64
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
	raw, err := dial(c.ctx, c.cfg)
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
	t := newTap(raw, c.sink, c.cfg.MaxMessage, c.cfg.QueueBytes)
	_, isTLS := raw.(*tls.Conn)
	lc := ldap.NewConn(t, isTLS)
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
	base := ldap.NewSearchRequest(c.cfg.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"1.1"}, nil)
	if _, err := lc.Search(base); err != nil {
		c.failConnect("base "+c.cfg.BaseDN, err)
		return
	}
	c.sink.Post(replink.Connected, nil)
	t.arm()
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
	c.sink.Post(ev, cause)
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

// Probe implements fsm.Conn: one keepalive request on the same connection,
// written by a short-lived goroutine so a full send buffer cannot block the
// machine. The answer is swallowed by the tap.
func (c *conn) Probe() {
	c.mu.Lock()
	t, closed := c.tap, c.closed
	c.mu.Unlock()
	if t == nil || closed {
		return
	}
	req := whoAmIRequest
	if c.cfg.Probe == "rootdse" {
		req = rootDSERequest
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t.probe(req, 5*time.Second) // an error here is a dead link: the keepalive will say so
	}()
}

// closeWait bounds how long Close waits for a handler to finish the change
// it is applying and for go-ldap to let go.
const closeWait = 2 * time.Second

// Close implements fsm.Conn. The session stops after the change it is
// applying, the cookie of the last applied change is saved, and a graceful
// close sends an unbind before the socket closes.
func (c *conn) Close(graceful bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	t, lc, done := c.tap, c.lc, c.syncDone
	c.mu.Unlock()
	c.cancel()
	if done != nil {
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}
	c.flushCookie()
	if t != nil {
		if graceful {
			t.probe(unbindRequest, time.Second)
		}
		t.shutdown()
	}
	if lc != nil {
		closed := make(chan struct{})
		go func() { lc.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(closeWait):
		}
	}
	c.wg.Wait()
}

func unbindRequest(id int64) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	p.AppendChild(ber.Encode(ber.ClassApplication, ber.TypePrimitive, 2, nil, "Unbind Request"))
	return p.Bytes()
}

// setCookie records the cookie of a change that has been applied, saving it
// if the flush interval has passed or force is set.
func (c *conn) setCookie(cookie []byte, force bool) error {
	c.mu.Lock()
	if cookie != nil {
		c.cookie, c.cookieSet = cookie, true
	}
	due := c.cookieSet && (force || time.Since(c.savedAt) >= c.cfg.CookieFlushInterval)
	c.mu.Unlock()
	if due {
		return c.flushCookie()
	}
	return nil
}

func (c *conn) flushCookie() error {
	c.mu.Lock()
	cookie, set := c.cookie, c.cookieSet
	c.cookieSet = false
	c.savedAt = time.Now()
	c.mu.Unlock()
	if !set {
		return nil
	}
	return c.cfg.Cookies.Save(cookie)
}

var _ net.Conn = (*tap)(nil)
