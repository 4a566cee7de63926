// Package mirror is a durable LDAP mirror to embed in a server: links
// that follow RFC 4533 syncrepl providers into bbolt stores (the cookie
// committed with the changes it covers), an optional change feed written
// ahead of every commit, Prometheus metrics, and an HTTP handler for
// status and admin actions. `replink run` is this package behind flags, a
// YAML file and signals.
//
// Build a Config, New it (stores opened, links added, nothing connected),
// Run it until its context ends (every link stopped and committed before
// Run returns, bounded), Reload it with another Config (all or nothing),
// and serve Handler wherever you like. Status gives the same view as
// GET /status, as Go values.
package mirror
