package ldapadapter

import (
	"errors"
	"fmt"

	"github.com/go-ldap/ldap/v3"
)

type wrapErr struct {
	kind   error
	format string
	args   []any
}

func (e *wrapErr) Error() string { return e.kind.Error() + ": " + fmt.Sprintf(e.format, e.args...) }
func (e *wrapErr) Unwrap() error { return e.kind }

// ErrHandler is wrapped by the cause of an exception raised because the
// Handler failed to apply a change.
var ErrHandler = errors.New("handler failed")

// HandlerError says which change the Handler could not apply.
type HandlerError struct {
	Change Change
	Err    error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("handler failed on %s %s: %v", e.Change.Op, e.Change.DN, e.Err)
}

func (e *HandlerError) Unwrap() []error { return []error{ErrHandler, e.Err} }

// ErrRefused is wrapped by the cause of connect-refused: the provider
// answered and said no (invalid credentials, no such base DN).
var ErrRefused = errors.New("refused by provider")

// ErrBaseGone is wrapped by the cause of connect-failed when the search
// base is missing on a provider the link has followed it on before: the
// base is being replaced, or the provider restored, so the link polls with
// backoff instead of waiting for an admin. A base the link never saw is a
// configuration error, refused (ErrRefused) as before.
var ErrBaseGone = errors.New("search base missing on the provider")

// ErrUntrusted is wrapped by the cause of connect-refused when the
// provider's certificate does not verify (unknown authority, wrong name,
// expired); the cause also wraps the *tls.CertificateVerificationError.
var ErrUntrusted = errors.New("provider certificate not trusted")

// ResultError is an LDAP result code the provider answered with.
type ResultError struct {
	Op      string
	Code    int64
	Message string
}

func (e *ResultError) Error() string {
	s := fmt.Sprintf("%s: LDAP result %d", e.Op, e.Code)
	if name, ok := ldap.LDAPResultCodeMap[uint16(e.Code)]; ok {
		s += " (" + name + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrProviderBehind is wrapped by the cause of an exception when the
// provider refuses the cookie as newer than its own state (LDAP 53,
// "consumer state is newer than provider"). It happens after a provider is
// restored from an older backup (it lasts until an admin acts: Link.Reload
// drops the cookie and reloads) and after a provider restarts from a crash
// with a lagging checkpoint (it clears at the provider's next write). The
// link retries with backoff meanwhile, keeping the cookie: a reload would
// delete what only the consumer still holds.
var ErrProviderBehind = errors.New("provider state is older than the consumer's cookie")
