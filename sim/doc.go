// Package sim is a simulated LDAP provider behind the [fsm.Adapter] seam,
// for deterministic tests of the state machine in virtual time
// (testing/synctest). It keeps a directory and a change log, serves refresh
// and persist sessions, answers keepalive probes, and can be told to fail in
// every way the design mail lists. It models behaviour, not bytes: tests of
// the wire live in ldapadapter, against a real slapd.
package sim
