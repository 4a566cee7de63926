// Package modelcheck checks replink's data path against a reference model.
//
// A seeded generator (gen.go) writes provider histories RFC 4533 allows:
// writes to the provider's content (add, modify, delete, rename, case-only
// rename, move, case twins, base replacement) and sync sessions answered
// from the consumer's cookie the way slapd or 389-ds would (model.go,
// run.go's refresh), over the wire to the real ldapadapter.Link through
// internal/wiresim. The consumer is the daemon's wiring: the store link
// with the change feed written ahead of it (consumer.go mirrors
// cmd/replink's handler and feed until package mirror lands).
//
// Wherever the provider says the consumer is in sync, Run checks that the
// store equals the model (by UUID: DN and every value's bytes), that the
// feed replayed from empty equals the store, and that the committed cookie
// is the provider's newest. The crash layer kills the consumer at the k-th
// feed write (torn), feed fsync or store commit (store.Link.WriteAhead)
// and starts a new one on what reached the disk; right after, the store
// must hold nothing the feed lacks.
//
// Run must be called inside a testing/synctest bubble: the whole history
// runs in virtual time. Shrink reduces a failing step list by delta
// debugging. The tests' doc says how to run seeds, durations and reruns.
package modelcheck

// Running it (see modelcheck_test.go):
//
//	go test ./internal/modelcheck                      # 500 seeds (300 under -race), 24 steps each
//	REPLINK_MODEL_SEEDS=5000 REPLINK_MODEL_STEPS=40 go test ./internal/modelcheck -run TestModel
//	REPLINK_MODEL_DURATION=10m go test -timeout 0 ./internal/modelcheck -run TestModel   # make soak-model
//	REPLINK_MODEL_SEED=537 REPLINK_MODEL_STEPS=40 REPLINK_MODEL_KEEP=20,21,22,24,30 go test ./internal/modelcheck -run TestModel -v
//	REPLINK_MODEL_FEATURES=all ...                     # also what reaches the defects still open
//	REPLINK_MODEL_HUNT=1 go test ./internal/modelcheck -run TestKnownDefects -v   # a shrunk seed per open defect
//
// A failure prints its seed, the shrunk step list and the command that
// reruns exactly that list.
