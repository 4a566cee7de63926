package ldapadapter

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
