package ldapadapter

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// A sync cookie is meaningful only for the content it was issued for: the
// search base, scope, filter and attributes (RFC 4533 §3.1). Sent with any
// other content, the provider answers with what changed since the cookie in
// the new content, and the copy silently lacks the rest (a wider filter) or
// keeps what is now out of scope (a narrower one). So the adapter stores
// each cookie bound to a digest of its content, and a cookie stored for
// other content is dropped: the link reloads in full and prunes.

// cookieMagic starts every cookie the adapter stores; the digest and a
// newline follow, then the provider's cookie as it sent it.
const cookieMagic = "replink-cookie/1 "

// contentDigest identifies what cfg replicates. Equivalent spellings of a
// filter or of the attribute list give the same digest; a base DN is taken
// as its parsed, lower-cased form.
func contentDigest(cfg *Config) string {
	base := cfg.BaseDN
	if dn, err := ldap.ParseDN(base); err == nil {
		base = dn.String()
	}
	filter := cfg.Filter
	if p, err := ldap.CompileFilter(filter); err == nil {
		if s, err := ldap.DecompileFilter(p); err == nil {
			filter = s
		}
	}
	attrs := make([]string, len(cfg.Attributes))
	for i, a := range cfg.Attributes {
		attrs[i] = strings.ToLower(a)
	}
	slices.Sort(attrs)
	attrs = slices.Compact(attrs)
	h := sha256.New()
	parts := []string{strings.ToLower(base), strconv.Itoa(cfg.Scope), filter, strings.Join(attrs, ",")}
	if cfg.Mode == ModeDirSync { // a DirSync cookie is no RFC 4533 cookie, and the flag changes what it covers
		parts = append(parts, ModeDirSync, strconv.FormatBool(cfg.DirSyncObjectSecurity))
	}
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// bindCookie is what the cookie store keeps for cookie under digest.
func bindCookie(digest string, cookie []byte) []byte {
	if cookie == nil {
		return nil
	}
	b := make([]byte, 0, len(cookieMagic)+len(digest)+1+len(cookie))
	b = append(b, cookieMagic...)
	b = append(b, digest...)
	b = append(b, '\n')
	return append(b, cookie...)
}

// aheadMark follows the binding when the copy may hold changes past the
// cookie: the link writes it before the first change after a save, and a
// save of the cookie that covers them clears it. After a crash it says the
// copy ran ahead of the cookie, which matters with a provider that does not
// report an entry added and deleted since the cookie (389-ds): the copy
// would keep it.
const aheadMark = " ahead"

// markAhead is what the cookie store keeps for cookie, bound to digest,
// while the copy may be ahead of it.
func markAhead(digest string, cookie []byte) []byte {
	return bindCookie(digest+aheadMark, cookie)
}

// unbindCookie returns the provider's cookie kept in stored if it was issued
// for digest, and whether it was marked ahead. ok is false when stored
// holds a cookie for other content, or one written without a binding;
// empty stored is no cookie, and ok.
func unbindCookie(digest string, stored []byte) (cookie []byte, ok, ahead bool) {
	if len(stored) == 0 {
		return nil, true, false
	}
	rest, found := bytes.CutPrefix(stored, []byte(cookieMagic))
	if !found {
		return nil, false, false
	}
	d, c, found := bytes.Cut(rest, []byte{'\n'})
	if found {
		d, ahead = bytes.CutSuffix(d, []byte(aheadMark))
	}
	if !found || string(d) != digest {
		return nil, false, false
	}
	return c, true, ahead
}
