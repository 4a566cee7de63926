// Package store keeps replicas durable in one bbolt file: each link's
// entries, keyed by entryUUID with an index by DN, and the link's sync
// cookie, committed in the same transaction as the changes it covers.
//
// A [Link] is an [ldapadapter.Handler] that is also its link's
// [ldapadapter.CookieStore]. Changes are buffered and committed in batches:
// when BatchSize changes are waiting, and whenever the adapter saves a
// cookie (at most every Config.CookieFlushInterval while changes flow, at
// the end of each refresh, and on Stop). So a crash at any instant leaves
// a committed cookie that never claims more than the committed data holds,
// and a refresh of 50,000 entries costs tens of commits, not 50,000.
//
// A full batch is committed by a goroutine of its own while the link
// decodes the next one, so a refresh uses a second core; while that commit
// runs, the next batch may grow to ten batches and go as one transaction.
// At most one such commit is in flight and every other commit waits for
// it, so the file is always the result of a prefix of the same
// transactions, in order; its failure fails the next Apply or Save.
//
// Whatever must hold every change the store holds (the daemon's change
// feed) hooks in with [Link.WriteAhead]: it runs before each commit, and a
// commit whose hook fails does not happen.
//
// The DN index is keyed by the normalised DN and the entryUUID, so it
// orders entries by name without ever merging two of them (see index.go).
//
// One file serves several links, each in buckets of its own, and each bound
// to the content it replicates: opening a link for another base, scope,
// filter or attribute list is refused rather than silently mixed.
package store
