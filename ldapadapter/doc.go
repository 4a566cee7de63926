// Package ldapadapter connects replink's link state machines to real LDAP
// providers over RFC 4533 syncrepl, refreshOnly and refreshAndPersist.
//
// The adapter owns the socket. It dials it (ldap://, ldaps:// or StartTLS,
// verification on by default, TCP keepalive and TCP_USER_TIMEOUT set) and
// hands go-ldap a tap rather than the raw connection: a reader that frames
// every inbound message, stamps the time of every read, recognises a Notice
// of Disconnection (which go-ldap drops), reports EOF and resets at once,
// rejects malformed or unsolicited messages and oversized length prefixes,
// and answers the engine's keepalive questions from the socket, not from the
// handler: a slow handler is never mistaken for a dead provider.
//
// For server authors: a [Handler] applies each change, a [CookieStore]
// keeps the cookie (saved only after everything before it was applied), a
// [Link] runs one provider link, and a [Consumer] holds several, each
// started, stopped and reconfigured at run time without disturbing the
// others.
//
// A Consumer is also the way to run many links cheaply. On Linux, its
// persisting links wait for their sockets in one epoll set of the
// Consumer's, served by one goroutine that reads keepalive answers itself
// and wakes a link's reader only for anything else; a probe's answer does
// not even wake that goroutine (the socket's receive low-water mark is
// raised above it and the answer is read a few milliseconds later, with
// the others). A link that has just received a change waits on its own
// until its next probe is answered, so a busy link costs what it would
// alone. A link made alone with [NewLink] always waits on its own.
package ldapadapter
