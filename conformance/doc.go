// Package conformance reads and runs the scenario scripts in
// testdata/conformance: plain-text specifications of how a link must behave
// when its provider, its network or its admin does something.
//
// A script is a list of steps, one a line, '#' starting a comment:
//
//	config mode=refreshAndPersist keepalive=1s keepalive-timeout=1s
//	start
//	expect Connecting on start within 0s
//	fault provider-hang
//	expect Polling on keepalive-miss within 2.2s
//
// Steps act (config, start, stop, shutdown, reconfigure, fault, write,
// delete, crash, restart, wait) or check (expect, quiet, state, reach,
// check in-sync). Faults are abstract: a [Target] maps provider-hang to a
// simulated hang or to SIGSTOP on a real slapd, so the same files specify
// both. "within" counts from the start of the previous action (a fault is
// timed from the moment it is injected), from the end of a wait or check,
// or from the previous expected transition.
//
// A step may be qualified with the targets it runs against, for a provider
// that behaves otherwise; the comment above it says how. An expectation may
// name alternative events when the provider races with the link's timers:
//
//	[sim slapd] expect Polling on connection-closed within 50ms
//	[389ds] expect Polling on keepalive-miss|connection-closed within 2.2s
//
// When a provider's recovery takes a path of its own (389-ds may close the
// first binds after a crash), "reach STATE within D" accepts any
// transitions that avoid Failed and Stopped until the link is in STATE.
//
//	[389ds] reach Persisting within 10s
//
// "through Failed" also lets it pass through Failed, for a fault that
// races with the link's retry (slapd's base replaced in two writes).
package conformance
