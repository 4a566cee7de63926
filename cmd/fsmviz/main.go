// Command fsmviz prints replink's link state machine, generated from the
// transition table, as Graphviz DOT (default), Mermaid or a Markdown table.
// With -o ending in .svg or .png it renders through Graphviz's dot binary.
//
//	go run ./cmd/fsmviz | dot -Tsvg > states.svg
//	go run ./cmd/fsmviz -format mermaid
//	go run ./cmd/fsmviz -o docs/states.svg
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/replink/replink"
	"github.com/replink/replink/diagram"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fsmviz:", err)
		os.Exit(1)
	}
}

// errNoDot is returned when rendering needs Graphviz and it is not installed.
var errNoDot = errors.New("rendering SVG or PNG needs Graphviz's dot on PATH (Debian: apt-get install graphviz); DOT and Mermaid text need nothing")

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fsmviz", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "dot", "output format: dot, mermaid or markdown")
	out := fs.String("o", "", "write to this file; .svg and .png render through dot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	ext := strings.ToLower(filepath.Ext(*out))
	render := false
	switch ext {
	case ".svg", ".png":
		render, *format = true, "dot"
	case "", ".dot", ".gv", ".mmd", ".md", ".txt":
	default:
		return fmt.Errorf("-o %s: want .svg or .png to render, or .dot, .gv, .mmd, .md, .txt for text", *out)
	}
	write, ok := diagram.Formats[*format]
	if !ok {
		return fmt.Errorf("unknown format %q (want dot, mermaid or markdown)", *format)
	}
	var buf bytes.Buffer
	if err := write(&buf, replink.Table); err != nil {
		return err
	}
	switch {
	case *out == "":
		_, err := stdout.Write(buf.Bytes())
		return err
	case render:
		return renderDot(buf.Bytes(), ext[1:], *out)
	default:
		return os.WriteFile(*out, buf.Bytes(), 0o644)
	}
}

func renderDot(src []byte, format, path string) error {
	dot, err := exec.LookPath("dot")
	if err != nil {
		return errNoDot
	}
	cmd := exec.Command(dot, "-T"+format, "-o", path)
	cmd.Stdin = bytes.NewReader(src)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dot -T%s: %v: %s", format, err, msg)
	}
	return nil
}
