package ldapadapter

import (
	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/google/uuid"
)

// Envelope wraps op (and controls) in an LDAPMessage with message ID id,
// for the external tests' scripted providers: the fuzz corpus builds its
// messages the same way.
func Envelope(id int64, op *ber.Packet, controls ...*ber.Packet) []byte {
	return fuzzMessage(id, op, controls...)
}

// SyncStateControl is a Sync State control, as the fuzz corpus builds it.
func SyncStateControl(state int64, u uuid.UUID, cookie string) *ber.Packet {
	return fuzzStateControl(state, u, cookie)
}

// StoredCookie is what the adapter would store for cookie under cfg's
// content, for tests that start from a stored cookie.
func StoredCookie(cfg Config, cookie string) []byte {
	d, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	return bindCookie(contentDigest(&d), []byte(cookie))
}

// StoredCookieUnder is StoredCookie for a provider whose base entry has
// the entryUUID baseUUID.
func StoredCookieUnder(cfg Config, baseUUID, cookie string) []byte {
	d, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	return bindCookie(contentDigest(&d)+" "+baseUUID, []byte(cookie))
}

// StoredCookieAhead is StoredCookie marked ahead: the copy may hold changes
// past it.
func StoredCookieAhead(cfg Config, cookie string) []byte {
	d, err := cfg.withDefaults()
	if err != nil {
		panic(err)
	}
	return markAhead(contentDigest(&d), []byte(cookie))
}
