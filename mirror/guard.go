package mirror

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
)

// HTTPConfig says how Handler guards the copy and the admin actions.
type HTTPConfig struct {
	// Addr is the address the handler is served on, as listening
	// (host:port). A request must name it, or a loopback name (localhost,
	// 127.0.0.0/8, [::1]) with its port, in its Host header: a web page
	// that rebinds its own name to 127.0.0.1 is refused (421), and cannot
	// read the copy. Empty: any loopback name, on any port. A request
	// carrying the Token passes whatever its Host.
	Addr string
	// Token, if set, is required on every request as
	// "Authorization: Bearer TOKEN" (401 without it). New refuses a
	// non-loopback Addr without one.
	Token string
	// Redact lists the attributes whose values GET /links/NAME/ldif
	// replaces with RedactedValue (nil: DefaultRedacted; empty, non-nil:
	// none). ?secrets=1 shows them, and only with the Token.
	Redact []string
}

// DefaultRedacted are the attributes that hold credentials in the usual
// schemas: OpenLDAP, Samba, Kerberos and Active Directory.
var DefaultRedacted = []string{
	"userPassword", "authPassword", "sambaNTPassword", "sambaLMPassword",
	"krbPrincipalKey", "unicodePwd", "supplementalCredentials",
}

// RedactedValue replaces each value of a redacted attribute.
const RedactedValue = "**redacted**"

// ErrNoToken refuses to serve the admin surface beyond this machine
// without a token.
var ErrNoToken = errors.New("refusing a non-loopback HTTP address without a token: anyone who reaches it could read the copy and stop the links (give http-token-file)")

// guard checks each request's Host, token and origin before the mux.
type guard struct {
	host, port string // of Addr; "" when not set
	token      [sha256.Size]byte
	hasToken   bool
	redact     map[string]bool // lower-cased names
	csrf       *http.CrossOriginProtection
}

func newGuard(c HTTPConfig) (*guard, error) {
	g := &guard{redact: map[string]bool{}, csrf: http.NewCrossOriginProtection()}
	if c.Addr != "" {
		h, p, err := net.SplitHostPort(c.Addr)
		if err != nil {
			return nil, fmt.Errorf("mirror: HTTP address %q: %w", c.Addr, err)
		}
		g.host, g.port = h, p
		if !loopbackHost(h) && c.Token == "" {
			return nil, fmt.Errorf("mirror: HTTP address %q: %w", c.Addr, ErrNoToken)
		}
	}
	if c.Token != "" {
		g.token, g.hasToken = sha256.Sum256([]byte(c.Token)), true
	}
	redact := c.Redact
	if redact == nil {
		redact = DefaultRedacted
	}
	for _, a := range redact {
		g.redact[strings.ToLower(a)] = true
	}
	return g, nil
}

// loopbackHost is a name that can only mean this machine.
func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// authenticated says whether r carries the token (compared in constant
// time, as digests, so neither its bytes nor its length leak).
func (g *guard) authenticated(r *http.Request) bool {
	if !g.hasToken {
		return false
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], g.token[:]) == 1
}

// hostAllowed says whether r's Host names the listening address or a
// loopback name with its port.
func (g *guard) hostAllowed(r *http.Request) bool {
	h, p, err := net.SplitHostPort(r.Host)
	if err != nil { // no port: 80
		h, p = strings.Trim(r.Host, "[]"), "80"
	}
	if g.port != "" && p != g.port {
		return false
	}
	if loopbackHost(h) {
		return true
	}
	return g.host != "" && strings.EqualFold(h, g.host) && !net.ParseIP(g.host).IsUnspecified()
}

// formTypes are the content types a web page can POST without a CORS
// preflight: an admin action never comes as one.
var formTypes = map[string]bool{
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
	"text/plain":                        true,
}

// wrap refuses, in order: a foreign Host (421), a missing or wrong token
// (401), a cross-origin request or a form body on POST (403, 415).
func (g *guard) wrap(next http.Handler) http.Handler {
	inner := g.csrf.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authed := g.authenticated(r)
		if !authed && !g.hostAllowed(r) {
			http.Error(w, "misdirected request: the Host header is not this server's address", http.StatusMisdirectedRequest)
			return
		}
		if g.hasToken && !authed {
			w.Header().Set("WWW-Authenticate", `Bearer realm="replink"`)
			http.Error(w, "unauthorized: give Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); ct != "" {
				mt, _, err := mime.ParseMediaType(ct)
				if err != nil || formTypes[mt] {
					http.Error(w, "an admin action takes no form body", http.StatusUnsupportedMediaType)
					return
				}
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// caller names who made an admin request, for the log.
func (g *guard) caller(r *http.Request) []any {
	auth := "none"
	if g.authenticated(r) {
		auth = "token"
	}
	return []any{"remote", r.RemoteAddr, "auth", auth}
}

// redacted returns e's attributes with the secret ones' values replaced.
func (g *guard) redacted(name string) bool {
	if i := strings.IndexByte(name, ';'); i >= 0 { // userPassword;binary
		name = name[:i]
	}
	return g.redact[strings.ToLower(name)]
}
