// Package feed is replink's change feed: every change applied to a copy,
// one JSON line each, for systems that are not directories (replink as a
// change-data-capture source).
//
// The feed is written ahead of the store: a [Writer]'s SyncFor(link) is the
// store link's WriteAhead hook, so no change is committed whose line is not
// durable in the feed (Sync works too, but cannot tell which link lost lines
// after a failed write, so it stays failed; see [Writer.Sync]). After a crash a
// change may therefore come twice, never not at all, and a line torn by the
// crash is cut off when the file is opened again (its change comes again: no
// cookie covered it). A failed write or fsync (a full disk) is repaired the
// same way without a restart: the feed cuts itself back to its last durable
// line, and the commit of each link whose lines it cut fails once.
//
// Values are kept exactly, binary ones included (a jpegPhoto, a
// certificate): a value that is valid UTF-8 is a JSON string, and an
// attribute with any other value is written base64 under its name with
// "::" appended, as LDIF does. The DN and the cookie follow the same rule.
// [Decode] and [Replay] give the bytes back. The format is described in
// docs/daemon.md ("The change feed").
package feed
