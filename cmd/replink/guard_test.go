package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// With --http-token-file every endpoint wants the token, and
// `replink approve-deletions --http-token-file` sends it. A non-loopback
// address is refused without one, even with --http-allow-external.
func TestHTTPToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cr3t-admin-token\n"), 0o600))
	p := start(t, "--url", "ldap://127.0.0.1:1", "--base", "dc=x", "--store", filepath.Join(dir, "r.db"), "--http-token-file", tokenFile)
	get := func(path, auth string) int {
		req, err := http.NewRequest("GET", "http://"+p.addr+path, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, get("/status", ""))
	require.Equal(t, http.StatusUnauthorized, get("/links/default/ldif", "Bearer wrong"))
	require.Equal(t, http.StatusOK, get("/status", "Bearer s3cr3t-admin-token"))

	out, err := exec.Command(binary, "approve-deletions", "--http", p.addr, "--link", "default").CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "401")
	out, err = exec.Command(binary, "approve-deletions", "--http", p.addr, "--link", "default", "--http-token-file", tokenFile).CombinedOutput()
	require.Error(t, err, "nothing is held")
	require.Contains(t, string(out), "409", "the token got it through")
	require.Eventually(t, func() bool {
		return strings.Contains(p.log(), `"action":"approve-deletions","link":"default","remote":"127.0.0.1:`) && strings.Contains(p.log(), `"auth":"token"`)
	}, 5*time.Second, 20*time.Millisecond, "%s", p.log())
	require.Equal(t, 0, p.stop())

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", "0.0.0.0:0"}, "set http-allow-external and http-token-file"},
		{[]string{"--http", "0.0.0.0:0", "--http-allow-external"}, "without http-token-file"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(binary, append([]string{"run", "--url", "ldap://127.0.0.1:1", "--base", "dc=x", "--store", filepath.Join(dir, "g.db")}, tc.args...)...)
		cmd.Stderr = &stderr
		require.Error(t, cmd.Run())
		require.Equal(t, exitUsage, cmd.ProcessState.ExitCode())
		require.Contains(t, stderr.String(), tc.want)
	}
}
