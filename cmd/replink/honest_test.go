package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/internal/slapdtest"
)

// runBinary runs replink with args and returns its exit code and stderr.
func runBinary(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("replink %v did not exit: it accepted what it should refuse\n%s", args, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// Every mistake of a file is reported in one go, each at the line of its
// key and in the file's words, the library's refusals included; nothing a
// user could read as a secret is echoed.
func TestBadConfigurationsAllAtOnce(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw"), 0o600))
	f := filepath.Join(dir, "replink.yaml")
	require.NoError(t, os.WriteFile(f, []byte(`store: `+filepath.Join(dir, "r.db")+`
store: `+filepath.Join(dir, "s.db")+`
links:
  - name: a
    url: http://x
    base: dc=example,dc=com
    keepalive: 1s
    keepalive-timeout: 5s
    inactivity: 0
    probe: ping
    password-file: `+pw+`
    base: dc=other
  - name: b
    url: ldap://cn=x:s3cret@host.example.com
    base: dc=example,dc=com
  - name: c
    url: ldap://host.example.com
    base: dc=example,dc=com
    bind-dn: cn=r,dc=example,dc=com
    password-file: `+pw+`
    server-name: host.example.com
    refresh-stall: 0s
    deletion-guard-floor: 0
`), 0o600))
	code, stderr := runBinary(t, "", "run", "--config", f, "--view", "off")
	require.Equal(t, exitUsage, code, stderr)
	for _, want := range []string{
		`:2: store: given twice (first at line 1)`,
		`:12: links[0].base: given twice (first at line 6)`,
		`:5: links[0] (a).url: "http://x": want ldap://`,
		`:8: links[0] (a).keepalive-timeout: 5s exceeds the interval 1s`,
		`:9: links[0] (a).inactivity: "0": 0 is refused: write off to turn it off`,
		`:10: links[0] (a).probe: "ping": want whoami or rootdse`,
		`:11: links[0] (a).password-file: without bind-dn: the link would bind anonymously`,
		`:14: links[1] (b).url: holds a user (and perhaps a password)`,
		`:20: links[2] (c).password-file: a simple bind to host.example.com would send the password in clear: use ldaps://, start-tls, or set allow-cleartext-password`,
		`:21: links[2] (c).server-name: "host.example.com" is never verified`,
		`:22: links[2] (c).refresh-stall: "0s": 0 is refused`,
		`:23: links[2] (c).deletion-guard-floor: "0": 0 is refused: write off`,
	} {
		require.Contains(t, stderr, want)
	}
	require.NotContains(t, stderr, "s3cret")
	require.NotRegexp(t, `[A-Z][a-z]+[A-Z][A-Za-z]*`, strings.NewReplacer(dir, "", "WhoAmI", "").Replace(stderr), "no Go field names")
	require.NotContains(t, stderr, "stopped")

	for name, body := range map[string]string{
		"empty links":          "store: x.db\nlinks: []\n",
		"duplicate in a link":  "store: x.db\nlinks:\n  - name: a\n    url: ldap://127.0.0.1:1\n    url: ldap://127.0.0.1:2\n    base: dc=x\n",
		"keepalive cannot off": "store: x.db\nlinks:\n  - name: a\n    url: ldap://127.0.0.1:1\n    base: dc=x\n    connect-timeout: off\n",
	} {
		require.NoError(t, os.WriteFile(f, []byte(body), 0o600))
		code, stderr := runBinary(t, "", "run", "--config", f, "--view", "off")
		require.Equal(t, exitUsage, code, "%s: %s", name, stderr)
	}
}

// The one-link flags speak flags, and every mistake of a command line
// exits 2 before anything starts; nothing is silently accepted.
func TestBadFlagsExitTwo(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("pw"), 0o600))
	link := []string{"run", "--url", "ldap://127.0.0.1:1", "--base", "dc=x", "--store", filepath.Join(dir, "r.db")}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"view", append(link, "--view", "bogus"), `--view "bogus"`},
		{"zero", append(link, "--keepalive", "0"), `--keepalive: "0": 0 is refused`},
		{"library", append(link, "--keepalive", "1s", "--keepalive-timeout", "5s"), `--keepalive-timeout: 5s exceeds the interval 1s`},
		{"cleartext", []string{"run", "--url", "ldap://h.example.com", "--base", "dc=x", "--store", filepath.Join(dir, "r.db"), "--bind-dn", "cn=x", "--password-file", pw},
			`--password-file: a simple bind to h.example.com would send the password in clear: use ldaps://, --start-tls, or set --allow-cleartext-password`},
		{"password without bind-dn", append(link, "--password-file", pw), `--password-file: without --bind-dn`},
		{"server-name in clear", append(link, "--server-name", "h"), `--server-name: "h" is never verified`},
		{"changes unopenable", append(link, "--changes", filepath.Join(dir, "no", "c.jsonl")), `changes: open`},
		{"store unopenable", []string{"run", "--url", "ldap://127.0.0.1:1", "--base", "dc=x", "--store", filepath.Join(dir, "no", "r.db")}, `no such file`},
		{"canon flag", []string{"canon", "--bogus"}, `-bogus`},
		{"canon argument", []string{"canon", "file.ldif"}, `no argument`},
		{"version argument", []string{"version", "x"}, `no argument`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runBinary(t, "dn: cn=a\ncn: a\n", tc.args...)
			require.Equal(t, exitUsage, code, stderr)
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stderr, "stopped", "nothing was started")
		})
	}
	_, err := os.Stat(filepath.Join(dir, "r.db"))
	require.True(t, os.IsNotExist(err), "no store is created by a refused command line")
}

// A one-link daemon whose link is refused for good (a wrong password)
// keeps serving, says so on /healthz, and exits 1 when stopped: it did not
// do its job. A daemon stopped while its link is fine exits 0.
func TestExitAfterPermanentFailure(t *testing.T) {
	srv := slapdtest.Start(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pw")
	require.NoError(t, os.WriteFile(bad, []byte("not-the-password"), 0o600))
	p := start(t, linkFlags(srv, bad, filepath.Join(dir, "r.db"))...)
	p.waitState("default", "Failed", 20*time.Second)
	require.Equal(t, "connect-refused", p.status()[0].LastEvent)
	code, body := p.get("/healthz")
	require.Equal(t, 503, code, body)
	p.signal(syscall.SIGINT)
	<-p.done
	require.Equal(t, exitError, p.cmd.ProcessState.ExitCode(), p.log())
	require.Contains(t, p.log(), "default (connect-refused)")

	good := start(t, linkFlags(srv, passwordFile(t), filepath.Join(dir, "g.db"))...)
	good.waitState("default", "Persisting", 20*time.Second)
	require.Equal(t, exitOK, good.stop())
}
