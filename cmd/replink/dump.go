package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink/mirror"
	"github.com/replink/replink/store"
)

// dumpCommand prints a link's committed copy as LDIF in canonical order:
// entries by DN, attributes by name, values sorted. `replink canon` puts
// ldapsearch's output in the same order, so the two diff cleanly.
func dumpCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("store", "", "store file")
	link := fs.String("link", "", "link to dump (default: the only one)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *path == "" {
		return usageError{errors.New("dump needs --store FILE")}
	}
	db, err := store.Open(*path, &store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	name := *link
	if name == "" {
		names, err := db.Links()
		if err != nil {
			return err
		}
		if len(names) != 1 {
			return usageError{fmt.Errorf("%s holds %d links (%s): choose one with --link", *path, len(names), strings.Join(names, ", "))}
		}
		name = names[0]
	}
	var entries []*ldap.Entry
	if err := db.Each(name, func(e *ldap.Entry) error { entries = append(entries, e); return nil }); err != nil {
		return err
	}
	return mirror.WriteLDIF(stdout, entries)
}

// canonCommand reads LDIF (as `ldapsearch -LLL -o ldif-wrap=no` prints it)
// and writes it in dump's order.
func canonCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("canon", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: replink canon < file.ldif (no flags, no arguments)") }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("canon reads standard input and takes no argument (got %q)", fs.Arg(0))}
	}
	entries, err := readLDIF(stdin)
	if err != nil {
		return err
	}
	return mirror.WriteLDIF(stdout, entries)
}

func resetCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("store", "", "store file")
	link := fs.String("link", "", "link whose copy and cookie to drop")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *path == "" || *link == "" {
		return usageError{errors.New("reset needs --store FILE and --link NAME")}
	}
	db, err := store.Open(*path, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Reset(*link); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "link %q dropped from %s: its next run loads it in full\n", *link, *path)
	return nil
}

// readLDIF parses unwrapped or wrapped LDIF content records.
func readLDIF(r io.Reader) ([]*ldap.Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var out []*ldap.Entry
	var cur *ldap.Entry
	var lines []string
	flush := func() error {
		for _, l := range lines {
			name, val, ok := strings.Cut(l, ":")
			if !ok {
				return fmt.Errorf("ldif: line %q has no colon", l)
			}
			switch {
			case strings.HasPrefix(val, ":"):
				b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val[1:]))
				if err != nil {
					return fmt.Errorf("ldif: %s: %w", name, err)
				}
				val = string(b)
			default:
				val = strings.TrimPrefix(val, " ")
			}
			if strings.EqualFold(name, "dn") {
				cur = &ldap.Entry{DN: val}
				out = append(out, cur)
				continue
			}
			if cur == nil {
				return fmt.Errorf("ldif: %s before any dn", name)
			}
			if a := attr(cur, name); a != nil {
				a.Values = append(a.Values, val)
			} else {
				cur.Attributes = append(cur.Attributes, &ldap.EntryAttribute{Name: name, Values: []string{val}})
			}
		}
		lines, cur = lines[:0], nil
		return nil
	}
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
			if err := flush(); err != nil {
				return nil, err
			}
		case strings.HasPrefix(l, "#"), strings.HasPrefix(l, "version:"):
		case strings.HasPrefix(l, " ") && len(lines) > 0:
			lines[len(lines)-1] += l[1:]
		default:
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, flush()
}

func attr(e *ldap.Entry, name string) *ldap.EntryAttribute {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}
