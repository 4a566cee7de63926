package ldapadapter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"slices"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Config says where the provider is, who we are, and what we replicate.
type Config struct {
	// URL is ldap://host:port or ldaps://host:port.
	URL string
	// URLs lists the providers of one replicated directory (OpenLDAP
	// multi-provider replicas, say), URL first if both are set. A link that
	// loses its provider, or fails to reach it, connects to the next one
	// after the backoff delay, keeping its cookie.
	URLs []string
	// StartTLS upgrades an ldap:// connection before binding.
	StartTLS bool
	// TLS configures ldaps and StartTLS. Nil means the system roots and the
	// URL's host as server name: verification is never off by default.
	TLS *tls.Config

	// BindDN and Password for a simple bind; SASLExternal binds with the
	// TLS client certificate instead. Neither: anonymous.
	BindDN       string
	Password     string
	SASLExternal bool
	// AllowCleartextPassword lets a simple bind send its password without
	// TLS to a host other than loopback. Without it such a configuration is
	// refused: anyone on the path could read the password.
	AllowCleartextPassword bool

	BaseDN string
	// Scope is ldap.ScopeWholeSubtree or ldap.ScopeSingleLevel; zero means
	// subtree, so ldap.ScopeBaseObject (also zero) cannot be asked for.
	Scope      int
	Filter     string // "(objectClass=*)" by default
	Attributes []string

	// LogBase, when set, makes the link replicate by delta-syncrepl: it
	// follows the provider's accesslog database under this suffix
	// ("cn=accesslog") and applies each logged write as it was made, so a
	// change of one attribute travels as that attribute, not as the whole
	// entry. The cookie stays the main base's: a copy without one, a cookie
	// the log no longer covers, and a logged write that cannot apply to the
	// copy are answered by a refresh of the main base, then the log again
	// (see docs/delta.md). The Handler must implement EntryReader.
	LogBase string
	// LogFilter narrows the log search further, ANDed with the records of
	// successful writes under BaseDN ("(reqType=modify)", say). Optional.
	LogFilter string

	// Mode selects the replication protocol: "" or ModeSyncrepl for RFC
	// 4533 (delta-syncrepl when LogBase is set), ModeDirSync for Active
	// Directory's DirSync control (dirsync.go). A DirSync link needs a
	// BaseDN that is a naming-context root (the domain's DN), subtree
	// scope, and a Handler that implements EntryReader: DirSync sends only
	// the attributes that changed, which the link merges into the stored
	// entry. Its identity is objectGUID.
	Mode string
	// DirSyncObjectSecurity sets DirSync's object-security flag (0x1): the
	// bind identity then needs no "Replicating Directory Changes" right and
	// sees only what it may read (on Samba: never a deletion).
	DirSyncObjectSecurity bool
	// DirSyncPoll is how often a DirSync link in the persist stage runs a
	// round without being woken by a change notification (which Samba
	// does not send for deletions). Default 30s.
	DirSyncPoll time.Duration
	// DirSyncNoNotification leaves out the change-notification search: the
	// persist stage then polls on DirSyncPoll alone (for a DC or a
	// middlebox that mishandles the long-lived search; AD allows five per
	// connection).
	DirSyncNoNotification bool

	// Handler applies the changes; Cookies keeps the cookie across restarts.
	// Each link needs a Handler of its own (see Handler.Known). A Handler
	// that is also a CookieStore keeps its own cookie, committed with the
	// changes it covers; Cookies must then be nil (or that Handler). A
	// HandlerFunc or a MemoryStore, whose copy dies with the process, is
	// refused with a durable cookie store. Nil Cookies keeps the cookie in
	// memory.
	Handler Handler
	Cookies CookieStore
	// CookieFlushInterval bounds how much a crash can make the link replay:
	// the cookie is saved at most this often while changes stream in, and
	// always at the end of a refresh and on Stop. Default 1s.
	CookieFlushInterval time.Duration

	// StopTimeout bounds Stop, Close and Shutdown for this link: the time
	// given to the handler to finish the change it is applying, the cookie
	// save and the unbind together. A handler still busy then is abandoned
	// (its change is replayed next time). Default 3s.
	StopTimeout time.Duration

	// RefreshStall ends a refresh during which the provider's sync search
	// sent nothing for this long, while the connection stayed alive: a
	// provider that stops a search without ending it would otherwise keep
	// the link in Refreshing for ever (389-ds does, at the replication
	// identity's size limit). The link fails and retries with backoff.
	// Default 5m, long enough for a provider's slowest first answer;
	// negative disables.
	RefreshStall time.Duration

	// DeletionGuard holds a refresh that would delete too much of the
	// copy until an admin approves it; on by default (see DeletionGuard).
	DeletionGuard DeletionGuard

	// DialContext, if set, opens the connection instead of a net.Dialer
	// (through a SOCKS proxy, say); TCPKeepAlive and TCPUserTimeout are then
	// the dialer's business. TLS and StartTLS still apply on top.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Probe selects the keepalive request: "whoami" (default) or "rootdse".
	Probe string
	// TCPKeepAlive and TCPUserTimeout are defence in depth under the LDAP
	// keepalive: the kernel gives up on a dead peer on its own.
	TCPKeepAlive   time.Duration // default 15s; negative disables
	TCPUserTimeout time.Duration // default 30s; negative disables
	// MaxMessage bounds one inbound LDAP message (default 16 MiB); a larger
	// length prefix is a protocol error, never an allocation.
	MaxMessage int
	// QueueBytes bounds what the socket reader buffers ahead of the handler
	// (default 4 MiB).
	QueueBytes int

	Logger *slog.Logger
}

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid adapter configuration")

// ConfigError is a value New refuses: the Config field at fault (a
// caller that configures the adapter from a file can name its own key for
// it) and why. New reports every one it finds, joined.
type ConfigError struct {
	Field string // "URL", "BaseDN", "DeletionGuard.Share", ...
	Msg   string
}

func (e *ConfigError) Error() string { return ErrInvalidConfig.Error() + ": " + e.Msg }
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func (c *Config) withDefaults() (Config, error) {
	d := *c
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	d.URLs = slices.Clone(d.URLs)
	if d.URL != "" && (len(d.URLs) == 0 || d.URLs[0] != d.URL) {
		d.URLs = append([]string{d.URL}, d.URLs...)
	}
	if len(d.URLs) == 0 {
		bad("URL", "URL is empty")
	} else {
		d.URL = d.URLs[0]
	}
	for _, raw := range d.URLs {
		if err := d.checkURL(raw); err != nil {
			errs = append(errs, err)
			break // one URL's mistake is usually every URL's
		}
	}
	if d.BaseDN == "" {
		bad("BaseDN", "BaseDN is empty")
	} else if _, err := ldap.ParseDN(d.BaseDN); err != nil {
		bad("BaseDN", "BaseDN: %v", err)
	}
	if err := d.checkLog(); err != nil {
		return d, err
	}
	if err := d.checkDirSync(); err != nil {
		return d, err
	}
	if d.BindDN != "" && d.Password == "" && !d.SASLExternal {
		bad("Password", "BindDN without a Password would be an unauthenticated bind")
	}
	if d.Handler == nil {
		bad("Handler", "Handler is nil")
	}
	if own, ok := d.Handler.(CookieStore); ok {
		// The handler commits the cookie with the changes it covers: a
		// second store could only disagree with it.
		if d.Cookies != nil && !sameStore(d.Cookies, own) {
			bad("Cookies", "the Handler (%T) keeps its own cookie; a separate CookieStore (%T) could disagree with it after a crash: leave Cookies nil", d.Handler, d.Cookies)
		}
		d.Cookies = own
	}
	switch d.Handler.(type) {
	case HandlerFunc, *MemoryStore:
		if durable(d.Cookies) {
			bad("Cookies", "the copy of a %T does not outlive the process, so a durable cookie store (%T) would resume a restart on an empty copy, or never delete what went away meanwhile: keep the cookie in memory (Cookies nil), or use a store that keeps its own cookie", d.Handler, d.Cookies)
		}
	}
	if _, ok := d.Handler.(EntryReader); d.LogBase != "" && !ok {
		return d, fmt.Errorf("%w: LogBase: the Handler (%T) cannot read back a stored entry (EntryReader), which applying a logged modify or rename needs", ErrInvalidConfig, d.Handler)
	}
	if d.RefreshStall == 0 {
		d.RefreshStall = 5 * time.Minute
	}
	guard, err := d.DeletionGuard.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	d.DeletionGuard = guard
	if d.StopTimeout <= 0 {
		d.StopTimeout = 3 * time.Second
	}
	if d.Filter == "" {
		d.Filter = "(objectClass=*)"
	}
	if _, err := ldap.CompileFilter(d.Filter); err != nil {
		bad("Filter", "Filter: %v", err)
	}
	switch d.Scope {
	case 0:
		d.Scope = ldap.ScopeWholeSubtree
	case ldap.ScopeWholeSubtree, ldap.ScopeSingleLevel:
	default:
		bad("Scope", "Scope %d: want ldap.ScopeWholeSubtree or ldap.ScopeSingleLevel", d.Scope)
	}
	if d.CookieFlushInterval <= 0 {
		d.CookieFlushInterval = time.Second
	}
	switch d.Probe {
	case "", "whoami", "rootdse":
	default:
		bad("Probe", "Probe %q: want whoami or rootdse", d.Probe)
	}
	if d.TCPKeepAlive == 0 {
		d.TCPKeepAlive = 15 * time.Second
	}
	if d.TCPUserTimeout == 0 {
		d.TCPUserTimeout = 30 * time.Second
	}
	if d.MaxMessage <= 0 {
		d.MaxMessage = 16 << 20
	}
	if d.QueueBytes <= 0 {
		d.QueueBytes = 4 << 20
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d, errors.Join(errs...)
}

// checkURL validates one provider URL against the rest of the settings.
func (d *Config) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return &ConfigError{Field: "URL", Msg: fmt.Sprintf("URL %q: want ldap://host:port or ldaps://host:port", raw)}
	}
	if u.Scheme == "ldaps" && d.StartTLS {
		return &ConfigError{Field: "StartTLS", Msg: "StartTLS on an ldaps:// URL"}
	}
	if d.SASLExternal && u.Scheme != "ldaps" && !d.StartTLS {
		return &ConfigError{Field: "SASLExternal", Msg: "SASLExternal needs ldaps:// or StartTLS: the identity is the TLS client certificate"}
	}
	if d.Password != "" && !d.SASLExternal && u.Scheme == "ldap" && !d.StartTLS && !d.AllowCleartextPassword && !loopbackHost(u.Hostname()) {
		return &ConfigError{Field: "Password", Msg: fmt.Sprintf("a simple bind to %s would send the password in clear: use ldaps://, StartTLS, or set AllowCleartextPassword", u.Host)}
	}
	return nil
}

// loopbackHost reports whether host names this machine without a lookup.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameStore reports whether a and b are the same cookie store.
func sameStore(a, b CookieStore) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Comparable() && a == b
}

// durable reports whether a cookie store outlives the process.
func durable(s CookieStore) bool {
	_, inMemory := s.(*MemoryCookieStore)
	return s != nil && !inMemory
}

// checkLog validates the delta-syncrepl settings.
func (d *Config) checkLog() error {
	if d.LogBase == "" {
		if d.LogFilter != "" {
			return fmt.Errorf("%w: LogFilter without a LogBase", ErrInvalidConfig)
		}
		return nil
	}
	if _, err := ldap.ParseDN(d.LogBase); err != nil {
		return fmt.Errorf("%w: LogBase: %v", ErrInvalidConfig, err)
	}
	if d.LogFilter != "" {
		if _, err := ldap.CompileFilter(d.LogFilter); err != nil {
			return fmt.Errorf("%w: LogFilter: %v", ErrInvalidConfig, err)
		}
	}
	return nil
}
