package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
)

// These tests run replink as a user does: the built binary, against a real
// slapd the test starts, with signals and HTTP.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replink-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "replink")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building replink: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one replink process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	addr string
	done chan struct{}
	err  error
}

var listening = regexp.MustCompile(`(?:"msg":"http listening","addr":"|msg="http listening" addr=)([^"\s]+)`)

// start runs `replink run` with args, JSON logs and an HTTP port of its own,
// and waits until it serves HTTP.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startWith(t, nil, args...)
}

// startWith is start with setup applied to the command first (its stdout,
// say).
func startWith(t *testing.T, setup func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	args = append([]string{"run", "--log-format", "json", "--http", "127.0.0.1:0", "--view", "off"}, args...)
	p := &proc{t: t, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	if setup != nil {
		setup(p.cmd)
	}
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				p.addr = m[1]
			}
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.addr != ""
	}, 10*time.Second, 10*time.Millisecond, "replink never served HTTP: %s", p.log())
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) signal(s syscall.Signal) { p.cmd.Process.Signal(s) }

// kill ends the process with SIGKILL (a crash) if it still runs.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("replink did not stop within 15s of SIGTERM:\n%s", p.log())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) get(path string) (int, string) {
	resp, err := http.Get("http://" + p.addr + path)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *proc) post(path string) int {
	resp, err := http.Post("http://"+p.addr+path, "", nil)
	require.NoError(p.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func (p *proc) status() []mirror.LinkStatus {
	_, body := p.get("/status")
	var s struct{ Links []mirror.LinkStatus }
	require.NoError(p.t, json.Unmarshal([]byte(body), &s))
	return s.Links
}

func (p *proc) waitState(link, state string, within time.Duration) {
	p.t.Helper()
	require.Eventually(p.t, func() bool {
		for _, s := range p.status() {
			if s.Name == link && s.State == state {
				return true
			}
		}
		return false
	}, within, 20*time.Millisecond, "link %s never %s:\n%s", link, state, p.log())
}

// dump runs `replink dump` on a store no process holds, as DN → attributes.
func dump(t *testing.T, store, link string) map[string]map[string][]string {
	t.Helper()
	out, err := exec.Command(binary, "dump", "--store", store, "--link", link).CombinedOutput()
	require.NoError(t, err, "%s", out)
	entries, err := readLDIF(bytes.NewReader(out))
	require.NoError(t, err)
	m := map[string]map[string][]string{}
	for _, e := range entries {
		_, dup := m[e.DN]
		require.False(t, dup, "%s twice in the dump", e.DN)
		m[e.DN] = ldapadapter.EntryAttributes(e)
	}
	return m
}

func requireSame(t *testing.T, srv *slapdtest.Server, got map[string]map[string][]string) {
	t.Helper()
	want, err := srv.Snapshot(context.Background(), slapdtest.PeopleDN)
	require.NoError(t, err)
	require.NoError(t, realtarget.DiffTrees(want, got))
}

func passwordFile(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(f, []byte(slapdtest.ReplicatorPW+"\n"), 0o600))
	return f
}

func linkFlags(srv *slapdtest.Server, pw, store string) []string {
	return []string{"--url", srv.URL(), "--bind-dn", slapdtest.ReplicatorDN, "--password-file", pw,
		"--base", slapdtest.PeopleDN, "--store", store, "--keepalive", "1s", "--keepalive-timeout", "1s",
		"--backoff-initial", "100ms", "--commit-interval", "200ms"}
}

// Replicate with the one-link flags, serve status, metrics and health, let
// an admin stop and start the link over HTTP, and feed every change out.
func TestRunReplicates(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(300))
	dir := t.TempDir()
	store, changes := filepath.Join(dir, "replica.db"), filepath.Join(dir, "changes.jsonl")
	p := start(t, append(linkFlags(srv, passwordFile(t), store), "--changes", changes)...)
	p.waitState("default", "Persisting", 20*time.Second)

	require.NoError(t, srv.Write(12)) // adds, modifies, renames
	require.NoError(t, srv.Delete(4))
	code, body := p.get("/healthz")
	require.Equal(t, http.StatusOK, code, body)
	want, err := srv.Snapshot(context.Background(), slapdtest.PeopleDN)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, m := p.get("/metrics")
		return strings.Contains(m, `replink_link_state{link="default",state="Persisting"} 1`) &&
			strings.Contains(m, fmt.Sprintf(`replink_entries{link="default"} %d`, len(want)))
	}, 10*time.Second, 50*time.Millisecond)
	_, metrics := p.get("/metrics")
	for _, series := range []string{"replink_link_transitions_total{", "replink_changes_applied_total{", "replink_cookie_age_seconds{", "replink_link_reconnects_total", "replink_refresh_changes{"} {
		require.Contains(t, metrics, series)
	}

	require.Equal(t, http.StatusOK, p.post("/links/default/stop"))
	require.Equal(t, "Stopped", p.status()[0].State)
	require.NoError(t, srv.Write(3))
	require.Equal(t, http.StatusOK, p.post("/links/default/start"))
	p.waitState("default", "Persisting", 10*time.Second)
	require.Equal(t, http.StatusNotFound, p.post("/links/nosuch/stop"))
	st := p.status()[0]
	require.Equal(t, srv.URL(), st.URL)
	require.NotEmpty(t, st.Recent)
	want, err = srv.Snapshot(context.Background(), slapdtest.PeopleDN)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, ldif := p.get("/links/default/ldif")
		entries, err := readLDIF(strings.NewReader(ldif))
		return err == nil && len(entries) == len(want)
	}, 10*time.Second, 50*time.Millisecond)

	_, statusBody := p.get("/status")
	_, metricsBody := p.get("/metrics")
	require.Equal(t, 0, p.stop(), "SIGTERM is a clean stop:\n%s", p.log())
	requireSame(t, srv, dump(t, store, "default"))
	requireFeedMatches(t, srv, changes)
	feedBody, err := os.ReadFile(changes)
	require.NoError(t, err)
	for what, text := range map[string]string{"log": p.log(), "/status": statusBody, "/metrics": metricsBody, "change feed": string(feedBody)} {
		require.NotContains(t, text, slapdtest.ReplicatorPW, "the password shows in the %s", what)
	}
}

// A recognisable password, refused by the provider, shows nowhere: not in
// text or JSON logs, not in the cause of the failure, /status or /metrics.
// A password file others can read gets a warning.
func TestSecretsNeverShown(t *testing.T) {
	srv := slapdtest.Start(t)
	const secret = "Zebra-Quokka-4417"
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte(secret), 0o644))
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			args := []string{"--url", srv.URL(), "--bind-dn", slapdtest.ReplicatorDN, "--password-file", pw,
				"--base", slapdtest.PeopleDN, "--store", filepath.Join(t.TempDir(), "r.db"), "--log-format", format}
			p := start(t, args...)
			p.waitState("default", "Failed", 10*time.Second)
			_, status := p.get("/status")
			_, metrics := p.get("/metrics")
			require.Contains(t, status, "Invalid Credentials")
			require.Equal(t, exitError, p.stop(), "stopped with its link refused for good")
			for what, text := range map[string]string{"log": p.log(), "/status": status, "/metrics": metrics} {
				require.NotContains(t, text, secret, "the password shows in the %s", what)
			}
			require.Contains(t, p.log(), "readable by other users")
		})
	}
}

// requireFeedMatches replays the change feed and compares it with the
// provider: the feed holds every change.
func requireFeedMatches(t *testing.T, srv *slapdtest.Server, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	byUUID := map[uuid.UUID]feed.Record{}
	n := 0
	require.NoError(t, feed.Replay(f, func(r feed.Record) error {
		n++
		if r.Op == ldapadapter.Delete {
			delete(byUUID, r.UUID)
		} else {
			byUUID[r.UUID] = r
		}
		return nil
	}))
	got := map[string]map[string][]string{}
	for _, r := range byUUID {
		got[r.DN] = ldapadapter.EntryAttributes(r.Entry())
	}
	requireSame(t, srv, got)
	require.Greater(t, n, 300)
}

// Case 1, brutal: kill -9 at several points of the link's life; a restart
// from the store converges on the provider, with nothing lost, duplicated
// or resurrected.
func TestKillNineAndRestart(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(3000))
	pw := passwordFile(t)
	for _, tc := range []struct {
		name string
		kill func(t *testing.T, p *proc)
	}{
		{"mid-refresh", func(t *testing.T, p *proc) {
			require.Eventually(t, func() bool {
				_, m := p.get("/metrics")
				return regexp.MustCompile(`replink_refresh_changes\{link="default"\} [1-9]\d{2,}`).MatchString(m)
			}, 20*time.Second, 2*time.Millisecond)
		}},
		{"mid-persist, writes under way", func(t *testing.T, p *proc) {
			p.waitState("default", "Persisting", 20*time.Second)
			require.NoError(t, srv.Write(5))
			require.NoError(t, srv.Delete(2))
		}},
		{"just after start", func(t *testing.T, p *proc) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "replica.db")
			p := start(t, linkFlags(srv, pw, store)...)
			tc.kill(t, p)
			t.Logf("killed in %s", p.status()[0].State)
			p.kill()
			require.NoError(t, srv.Write(4)) // while the consumer is down
			require.NoError(t, srv.Delete(1))

			p = start(t, linkFlags(srv, pw, store)...)
			p.waitState("default", "Persisting", 30*time.Second)
			want, err := srv.Snapshot(context.Background(), slapdtest.PeopleDN)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return p.status()[0].Entries == len(want) }, 10*time.Second, 20*time.Millisecond,
				"entries held %d, provider %d", p.status()[0].Entries, len(want))
			require.Equal(t, 0, p.stop())
			requireSame(t, srv, dump(t, store, "default"))
		})
	}
}

const configTemplate = `# replink test configuration
store: %s
links:
  - name: a
    url: %s
    bind-dn: %s
    password-file: %s
    base: %s
    keepalive: %s
    keepalive-timeout: 1s
%s`

// Case 2 through SIGHUP: a changed configuration starts, stops or
// reconnects only the links that changed; a broken one is rejected with
// its file and line, and the running links are left alone.
func TestSIGHUP(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(20))
	dir := t.TempDir()
	pw, store, cfg := passwordFile(t), filepath.Join(dir, "replica.db"), filepath.Join(dir, "replink.yaml")
	write := func(keepalive, extra string) {
		body := fmt.Sprintf(configTemplate, store, srv.URL(), slapdtest.ReplicatorDN, pw, slapdtest.PeopleDN, keepalive, extra)
		require.NoError(t, os.WriteFile(cfg, []byte(body), 0o600))
	}
	linkB := fmt.Sprintf("  - name: b\n    url: %s\n    bind-dn: %s\n    password-file: %s\n    base: %s\n", srv.URL(), slapdtest.ReplicatorDN, pw, slapdtest.BaseDN)
	write("2s", "")
	p := start(t, "--config", cfg)
	p.waitState("a", "Persisting", 10*time.Second)
	history := func(name string) int {
		for _, s := range p.status() {
			if s.Name == name {
				return len(s.Recent)
			}
		}
		return -1
	}

	write("2s", linkB) // a unchanged, b new
	p.signal(syscall.SIGHUP)
	p.waitState("b", "Persisting", 10*time.Second)
	aBefore := history("a")
	require.Equal(t, 3, aBefore, "link a was touched")

	write("3s", linkB) // a changed
	p.signal(syscall.SIGHUP)
	require.Eventually(t, func() bool { return history("a") > aBefore }, 10*time.Second, 20*time.Millisecond)
	p.waitState("a", "Persisting", 10*time.Second)
	require.Contains(t, p.status()[0].Recent[aBefore].Event, "reconfigure")
	bBefore := history("b")

	write("3s", linkB+"    keepalive: soon\n") // broken
	p.signal(syscall.SIGHUP)
	require.Eventually(t, func() bool { return strings.Contains(p.log(), "configuration rejected") }, 10*time.Second, 20*time.Millisecond)
	require.Regexp(t, regexp.QuoteMeta(cfg)+`:\d+: links\[1\] \(b\)\.keepalive`, p.log())
	require.Equal(t, bBefore, history("b"))
	p.waitState("a", "Persisting", time.Second)

	// a renamed to gone, and a link whose store directory is missing: the
	// whole configuration is rejected, a is not stopped and gone never runs.
	aBefore = history("a")
	renamed := strings.Replace(fmt.Sprintf(configTemplate, store, srv.URL(), slapdtest.ReplicatorDN, pw, slapdtest.PeopleDN, "3s", linkB), "name: a\n", "name: gone\n", 1)
	renamed += fmt.Sprintf("  - name: c\n    url: %s\n    base: %s\n    store: %s\n", srv.URL(), slapdtest.PeopleDN, filepath.Join(dir, "missing", "c.db"))
	require.NoError(t, os.WriteFile(cfg, []byte(renamed), 0o600))
	p.signal(syscall.SIGHUP)
	require.Eventually(t, func() bool { return strings.Count(p.log(), "configuration rejected") == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, p.log(), "missing")
	var names []string
	for _, s := range p.status() {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"a", "b"}, names)
	require.Equal(t, aBefore, history("a"), "link a was touched")
	p.waitState("a", "Persisting", time.Second)

	write("3s", "") // b removed
	p.signal(syscall.SIGHUP)
	require.Eventually(t, func() bool { return len(p.status()) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, p.stop())
	requireSame(t, srv, dump(t, store, "a"))
}

// Every bad value fails before anything connects, naming file, line and
// field, and never printing a secret.
func TestBadConfigurations(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret-do-not-print"), 0o600))
	head := "store: " + filepath.Join(dir, "r.db") + "\nlinks:\n  - name: a\n    url: ldap://127.0.0.1:1\n    base: dc=example,dc=com\n    bind-dn: cn=r,dc=example,dc=com\n    password-file: " + pw + "\n"
	for _, tc := range []struct {
		name, body, want string
	}{
		{"bad duration", head + "    keepalive: 3x\n", `:8: links[0] (a).keepalive: "3x": want a duration`},
		{"unknown link field", head + "    keepalve: 3s\n", `:8: links[0].keepalve: unknown setting`},
		{"unknown top field", "htp: x\n" + head, `:1: htp: unknown setting`},
		{"bad url", strings.Replace(head, "ldap://127.0.0.1:1", "http://x", 1), `:4: links[0] (a).url: "http://x": want ldap://`},
		{"bad scope", head + "    scope: deep\n", `:8: links[0] (a).scope: "deep": want sub or one`},
		{"keepalive timeout over interval", head + "    keepalive: 1s\n    keepalive-timeout: 5s\n", `:9: links[0] (a).keepalive-timeout: 5s exceeds the interval 1s`},
		{"missing password file", strings.Replace(head, pw, pw+".missing", 1), `:7: links[0] (a).password-file: open`},
		{"duplicate names", head + strings.Replace(head[strings.Index(head, "  - name"):], "", "", 1), `links[1].name: "a" is already the name`},
		{"no links", "store: x\n", `links: missing`},
		{"not yaml", "links: [\n", `yaml:`},
		{"bad filter", head + "    filter: (cn=\n", `:8: links[0] (a).filter: `},
		{"mode", head + "    mode: push\n", `.mode: "push"`},
		{"probe", head + "    probe: ping\n", `:8: links[0] (a).probe: "ping": want whoami or rootdse`},
		{"queue bytes", head + "    queue-bytes: lots\n", `:8: links[0] (a).queue-bytes: "lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "replink.yaml")
			require.NoError(t, os.WriteFile(f, []byte(tc.body), 0o600))
			var stderr bytes.Buffer
			cmd := exec.Command(binary, "run", "--config", f)
			cmd.Stderr = &stderr
			err := cmd.Run()
			require.Error(t, err)
			require.Equal(t, exitUsage, cmd.ProcessState.ExitCode(), stderr.String())
			require.Contains(t, stderr.String(), tc.want)
			require.NotContains(t, stderr.String(), "s3cret-do-not-print")
			_, statErr := os.Stat(filepath.Join(dir, "r.db"))
			require.True(t, os.IsNotExist(statErr), "nothing may be opened before the configuration is valid")
		})
	}
	t.Run("flags", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd := exec.Command(binary, "run", "--url", "ldap://127.0.0.1:1", "--base", "dc=x", "--store", filepath.Join(dir, "f.db"), "--keepalive", "fast")
		cmd.Stderr = &stderr
		require.Error(t, cmd.Run())
		require.Equal(t, exitUsage, cmd.ProcessState.ExitCode())
		require.Contains(t, stderr.String(), `--keepalive: "fast"`)
	})
	t.Run("http beyond loopback", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd := exec.Command(binary, "run", "--url", "ldap://127.0.0.1:1", "--base", "dc=x", "--store", filepath.Join(dir, "g.db"), "--http", "0.0.0.0:0")
		cmd.Stderr = &stderr
		require.Error(t, cmd.Run())
		require.Contains(t, stderr.String(), "non-loopback")
	})
}

// On a terminal the links are shown as a live table; --view on forces it
// onto a pipe here.
func TestLiveView(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(10))
	cmd := exec.Command(binary, append([]string{"run", "--view", "on"}, linkFlags(srv, passwordFile(t), filepath.Join(t.TempDir(), "r.db"))...)...)
	var out bytes.Buffer
	cmd.Stderr = &out
	require.NoError(t, cmd.Start())
	time.Sleep(2 * time.Second)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	s := out.String()
	require.Contains(t, s, "\x1b[H\x1b[2J", "the view redraws the screen")
	require.Regexp(t, `LINK\s+STATE\s+SINCE\s+ENTRIES`, s)
	require.Regexp(t, `default\s+Persisting\s+\S+\s+11\b`, s)
	require.Contains(t, s, "msg=stopped", "the log lines held by the view are printed at the end")
}

// A store written for one content refuses another: no silent mixing.
func TestStoreRefusesOtherContent(t *testing.T) {
	srv := slapdtest.Start(t)
	pw := passwordFile(t)
	store := filepath.Join(t.TempDir(), "replica.db")
	p := start(t, linkFlags(srv, pw, store)...)
	p.waitState("default", "Persisting", 10*time.Second)
	require.Equal(t, 0, p.stop())
	fi, err := os.Stat(store)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	args := linkFlags(srv, pw, store)
	for i, a := range args {
		if a == slapdtest.PeopleDN {
			args[i] = slapdtest.BaseDN
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(binary, append([]string{"run", "--view", "off"}, args...)...)
	cmd.Stderr = &stderr
	require.Error(t, cmd.Run())
	require.Contains(t, stderr.String(), "was replicated from")
	require.Contains(t, stderr.String(), store)
}

// Several providers of one directory, given as --url twice: when the one in
// use dies the daemon moves to the other and says so in /status, /metrics
// and its log.
func TestRunFailsOver(t *testing.T) {
	a, b := slapdtest.StartPair(t, 10)
	store := filepath.Join(t.TempDir(), "replica.db")
	args := linkFlags(a, passwordFile(t), store)
	args = append(args, "--url", b.URL(), "--base", slapdtest.BaseDN)
	p := start(t, args...)
	p.waitState("default", "Persisting", 10*time.Second)
	st := p.status()[0]
	require.Equal(t, []string{a.URL(), b.URL()}, st.URLs)
	require.Equal(t, a.URL(), st.Provider)
	a.Kill()
	require.Eventually(t, func() bool {
		st := p.status()[0]
		return st.State == "Persisting" && st.Provider == b.URL()
	}, 10*time.Second, 20*time.Millisecond, "%s", p.log())
	// Metrics and logs follow the transitions a moment after the state.
	require.Eventually(t, func() bool {
		_, m := p.get("/metrics")
		return strings.Contains(m, fmt.Sprintf(`replink_link_provider{link="default",url=%q} 1`, b.URL())) &&
			strings.Contains(p.log(), `"provider":"`+b.URL()+`"`)
	}, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, b.Write(3))
	want, err := b.Snapshot(context.Background(), slapdtest.BaseDN)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return p.status()[0].Entries == len(want) }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, p.stop())
	got := dump(t, store, "default")
	require.NoError(t, realtarget.DiffTrees(want, got))
	a.Launch()
}
