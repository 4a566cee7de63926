package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/internal/slapdtest"
)

// `replink run --changes - | head -c 10`: the reader goes away. The daemon
// must not die of SIGPIPE without a word: it logs the cause at ERROR and
// stops cleanly with exit code 1.
func TestFeedReaderGoneStopsTheDaemon(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(300))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	store := filepath.Join(t.TempDir(), "r.db")
	p := startWith(t, func(c *exec.Cmd) { c.Stdout = w }, append(linkFlags(srv, passwordFile(t), store), "--changes", "-")...)
	w.Close() // the daemon holds its own end
	_, err = io.ReadFull(r, make([]byte, 10))
	require.NoError(t, err)
	r.Close() // head -c 10 exits
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("replink kept running after its feed's reader left:\n%s", p.log())
	}
	require.Equal(t, exitError, p.cmd.ProcessState.ExitCode(), "killed by a signal, or a clean exit: %v\n%s", p.cmd.ProcessState, p.log())
	require.Regexp(t, `"level":"ERROR","msg":"the change feed's reader is gone; stopping".*broken pipe`, p.log())
	require.Contains(t, p.log(), `"msg":"stopped"`)
}

// SIGTERM while the feed's reader reads nothing (stdout a full pipe):
// shutdown is bounded all the same, and says it abandoned the feed.
func TestSIGTERMWithAStalledFeedReader(t *testing.T) {
	srv := slapdtest.Start(t, slapdtest.WithPeople(1000))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close() // open, never read
	store := filepath.Join(t.TempDir(), "r.db")
	p := startWith(t, func(c *exec.Cmd) { c.Stdout = w }, append(linkFlags(srv, passwordFile(t), store), "--changes", "-")...)
	w.Close()
	p.waitState("default", "Refreshing", 10*time.Second)
	time.Sleep(2 * time.Second) // 1,000 lines fill the pipe many times over
	require.Equal(t, "Refreshing", p.status()[0].State, "the refresh is stuck on the feed")
	began := time.Now()
	code := p.stop() // fails the test after 15 s
	require.Less(t, time.Since(began), 12*time.Second)
	require.Equal(t, exitError, code, "%s", p.log())
	require.Contains(t, p.log(), "the feed did not close in time")
	require.Contains(t, p.log(), `"msg":"stopped"`)
}
