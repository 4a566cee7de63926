package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/replink/replink"
	"github.com/replink/replink/mirror"
)

// wantView decides whether the live view takes over the terminal: only
// when asked, or on a terminal with text logs.
func wantView(mode, format string, w io.Writer) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	f, ok := w.(*os.File)
	if !ok || format != "text" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// liveView redraws a compact table of the links twice a second, with the
// latest log lines under it; log lines are written into it, not through.
type liveView struct {
	out   io.Writer
	mu    sync.Mutex
	lines []string // the latest log lines
	part  []byte
	done  chan struct{}
	once  sync.Once
	rates map[string]rate
}

type rate struct {
	at      time.Time
	applied int64
	perSec  float64
}

const viewLogLines = 8

func newLiveView(out io.Writer) *liveView {
	return &liveView{out: out, done: make(chan struct{}), rates: map[string]rate{}}
}

// Write keeps the last complete log lines.
func (v *liveView) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.part = append(v.part, p...)
	for {
		i := bytes.IndexByte(v.part, '\n')
		if i < 0 {
			break
		}
		v.lines = append(v.lines, string(v.part[:i]))
		v.part = v.part[i+1:]
	}
	if n := len(v.lines); n > viewLogLines {
		v.lines = append(v.lines[:0], v.lines[n-viewLogLines:]...)
	}
	return len(p), nil
}

func (v *liveView) run(ctx context.Context, m *mirror.Mirror) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.done:
			return
		case <-t.C:
			v.draw(m)
		}
	}
}

func (v *liveView) draw(m *mirror.Mirror) {
	var b bytes.Buffer
	b.WriteString("\x1b[H\x1b[2J")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tSTATE\tSINCE\tENTRIES\tAPPLIED\tLAST EVENT\tPROGRESS")
	now := time.Now()
	for _, s := range m.Status() {
		r := v.rates[s.Name]
		if dt := now.Sub(r.at).Seconds(); dt >= 1 {
			r = rate{at: now, applied: s.ChangesApplied, perSec: float64(s.ChangesApplied-r.applied) / dt}
			v.rates[s.Name] = r
		}
		progress := ""
		if s.State == replink.Refreshing.String() {
			progress = bar(r.perSec)
		}
		since := "-"
		if !s.Since.IsZero() {
			since = now.Sub(s.Since).Round(time.Second).String()
		}
		last := s.LastEvent
		if s.LastCause != "" {
			last += ": " + truncate(s.LastCause, 40)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, s.State, since, s.Entries, s.ChangesApplied, last, progress)
	}
	tw.Flush()
	b.WriteString(strings.Repeat("─", 60) + "\n")
	v.mu.Lock()
	for _, l := range v.lines {
		b.WriteString(truncate(l, 160) + "\n")
	}
	v.mu.Unlock()
	v.out.Write(b.Bytes())
}

// bar shows a refresh's pace: slapd gives no total, so a rate.
func bar(perSec float64) string {
	n := min(int(perSec/2000), 20)
	return fmt.Sprintf("[%-20s] %.0f/s", strings.Repeat("#", n), perSec)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// close stops redrawing and prints the log lines it held.
func (v *liveView) close() {
	v.once.Do(func() {
		close(v.done)
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, l := range v.lines {
			fmt.Fprintln(v.out, l)
		}
	})
}
