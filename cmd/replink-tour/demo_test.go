package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink/internal/slapdtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// What the demo suggests after Ctrl-C works: the copy is kept where it
// says, and replink dump prints it.
func TestDemoKeepsTheCopyItSuggestsToDump(t *testing.T) {
	if slapdtest.Binary() == "" {
		t.Skip("slapd is not installed")
	}
	bin := filepath.Join(t.TempDir(), "replink")
	out, err := exec.Command("go", "build", "-o", bin, "../replink").CombinedOutput()
	require.NoError(t, err, "%s", out)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- demo(ctx, []string{"-replink", bin, "-entries", "20"}, &stdout, &stderr) }()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "to=Persisting") },
		30*time.Second, 50*time.Millisecond, "%s\n%s", stdout.String(), stderr.String())
	cancel() // Ctrl-C
	require.NoError(t, <-done)
	m := regexp.MustCompile(`dump --store (\S+)`).FindAllStringSubmatch(stdout.String(), -1)
	require.Len(t, m, 2, "suggested while running and said again at the end:\n%s", stdout.String())
	store := m[1][1]
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(store)) })
	ldif, err := exec.Command(bin, "dump", "--store", store).CombinedOutput()
	require.NoError(t, err, "%s", ldif)
	require.Equal(t, 21, strings.Count(string(ldif), "\ndn: ")+strings.Count(string(ldif[:3]), "dn:"), "ou=people and its 20 people:\n%s", ldif)
}
