package main

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/internal/slapdtest"
)

// Half the directory deleted while the daemon was down is held by the
// deletion guard at the next start: nothing is deleted, the link waits in
// Failed, and /status, /metrics, /healthz and the log say why with the
// numbers. `replink approve-deletions` applies them, and the copy equals
// the provider again.
func TestDeletionGuardHoldsUntilApproved(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(300))
	store := filepath.Join(t.TempDir(), "replica.db")
	args := append(linkFlags(srv, passwordFile(t), store), "--deletion-guard", "20%", "--deletion-guard-floor", "10")
	p := start(t, args...)
	p.waitState("default", "Persisting", 20*time.Second)
	before := p.status()[0].Entries
	require.Equal(t, 0, p.stop())

	require.NoError(t, srv.Delete(150))
	p = start(t, args...)
	p.waitState("default", "Failed", 30*time.Second)
	st := p.status()[0]
	require.Equal(t, "deletions-held", st.LastEvent, "cause: %s", st.LastCause)
	require.NotNil(t, st.HeldDeletions)
	require.Equal(t, 150, st.HeldDeletions.Deletions)
	require.Equal(t, before, st.HeldDeletions.Copy)
	require.Equal(t, before, st.Entries, "the guard let deletions through")
	_, metrics := p.get("/metrics")
	require.Regexp(t, `replink_deletions_held\{link="default"\} 150\b`, metrics)
	code, _ := p.get("/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Regexp(t, regexp.MustCompile(`would delete 150 of the \d+ entries`), p.log())

	time.Sleep(time.Second) // the backoff would have retried by now: it must not
	require.Equal(t, "Failed", p.status()[0].State)

	out, err := exec.CommandContext(context.Background(), binary, "approve-deletions", "--http", p.addr, "--link", "default").CombinedOutput()
	require.NoError(t, err, "%s", out)
	p.waitState("default", "Persisting", 20*time.Second)
	require.Nil(t, p.status()[0].HeldDeletions)
	_, metrics = p.get("/metrics")
	require.Regexp(t, `replink_deletions_held\{link="default"\} 0\b`, metrics)
	require.Equal(t, 0, p.stop())
	requireSame(t, srv, dump(t, store, "default"))

	out, err = exec.Command(binary, "approve-deletions", "--http", "127.0.0.1:1").CombinedOutput()
	require.Error(t, err, "%s", out)
	require.Equal(t, exitUsage, err.(*exec.ExitError).ExitCode(), "%s", out)
}
