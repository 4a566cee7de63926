// Package fsm runs provider-link state machines built from [replink.Table].
//
// A [Machine] is a deterministic core in the etcd-io/raft sense: it decides,
// it does no I/O. One goroutine owns each machine and takes events from a
// mailbox, so callers never block on each other and looplab/fsm is never
// entered twice. On entering a state the machine arms that state's timers
// (connect timeout, keepalive, inactivity, retry) and asks its [Adapter] to
// connect, sync, probe or close; on leaving it cancels them. The adapter
// reports what the network did by posting events back. Time comes from the
// standard library only, so testing/synctest can run a two-minute backoff in
// microseconds.
package fsm
