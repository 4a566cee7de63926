// Package mirror is replink's daemon side of a link: what the adapter of a
// link calls (the link's copy in the store, with the change feed written
// ahead of it) and the counters status and metrics read. The daemon's
// wiring will move here too; cmd/replink keeps only the command line.
package mirror
