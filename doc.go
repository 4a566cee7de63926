// Package replink is the consumer side of LDAP replication (RFC 4533 syncrepl):
// one link to each provider, each link an explicit finite-state machine.
//
// This package holds the vocabulary every other package shares: the link
// [State]s, the [Event]s that move a link between them, the [Case]s of the
// design mail each transition serves, and the transition [Table] itself. The
// table is the single source of truth: package fsm builds its engine from it,
// package diagram draws it, and the conformance scenarios are checked against
// it.
package replink
