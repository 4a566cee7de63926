package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/replink/replink/internal/slapdtest"
)

// demo starts a throwaway slapd on a loopback port, seeds it, and runs the
// replink daemon (a binary built beforehand: make demo does it) mirroring
// ou=people into a bbolt file, with its status page on localhost. It tells
// the user what to try, and removes the provider when the daemon stops
// (Ctrl-C), keeping the copy for replink dump.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("replink", "bin/replink", "the replink binary to run")
	entries := fs.Int("entries", 3000, "people to seed the provider with")
	httpAddr := fs.String("http", "", "status address (default: a free port on 127.0.0.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if slapdtest.Binary() == "" {
		return errors.New("slapd is not installed: apt-get install slapd ldap-utils (the demo starts its own slapd; the system service is not used)")
	}
	replink, err := filepath.Abs(*bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(replink); err != nil {
		return fmt.Errorf("%w: build it first (go build -o bin/replink ./cmd/replink)", err)
	}
	tb := &slapdtest.Harness{}
	defer tb.Close()
	var srv *slapdtest.Server
	if err := tb.Run(func() { srv = slapdtest.Start(tb, slapdtest.WithPeople(*entries)) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "provider: slapd pid %d on %s with %d people\n", srv.Pid(), srv.URL(), *entries)
	dir := tb.TempDir()
	pw := filepath.Join(dir, "replicator.pw")
	if err := os.WriteFile(pw, []byte(slapdtest.ReplicatorPW), 0o600); err != nil {
		return err
	}
	// The copy outlives the demo, so that what it suggests after Ctrl-C
	// (replink dump) works: its directory is not the harness's.
	keep, err := os.MkdirTemp("", "replink-demo-copy-")
	if err != nil {
		return err
	}
	addr := *httpAddr
	if addr == "" {
		if addr, err = freeAddr(); err != nil {
			return err
		}
	}
	v := demoVars{
		Replink: replink, URL: srv.URL(), Port: srv.Port, Pid: srv.Pid(), Dir: dir, PW: pw,
		Store: filepath.Join(keep, "replica.db"), HTTP: addr, Config: filepath.Join(dir, "replink.yaml"),
		Base: slapdtest.PeopleDN, Suffix: slapdtest.BaseDN,
		AdminDN: slapdtest.AdminDN, AdminPW: slapdtest.AdminPW, BindDN: slapdtest.ReplicatorDN,
	}
	if err := writeTemplate(v.Config, demoConfig, v); err != nil {
		return err
	}
	if err := demoHelp.Execute(stdout, v); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, replink, "run", "--config", v.Config)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// Ctrl-C stops replink the way it promises to be stopped (unbind,
	// commit), not with the SIGKILL CommandContext sends by default; it is
	// killed only if it has not exited within its stop bound and more.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	how := fmt.Sprint(err)
	if cmd.ProcessState != nil {
		how = cmd.ProcessState.String() // "exit status 0" after Ctrl-C, not the context's error
	}
	fmt.Fprintf(stdout, "\nreplink exited (%s); the provider and %s are removed now.\n", how, dir)
	fmt.Fprintf(stdout, "The copy stays in %s:\n  %s dump --store %s\nRemove it with: rm -r %s\n", v.Store, replink, v.Store, keep)
	return nil
}

type demoVars struct {
	Replink, URL, Dir, PW, Store, HTTP, Config, Base, Suffix, AdminDN, AdminPW, BindDN string
	Port, Pid                                                                          int
}

func writeTemplate(path, text string, v any) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	return template.Must(template.New("").Parse(text)).Execute(f, v)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

const demoConfig = `# replink demo: one link mirroring ou=people of a local slapd.
http: {{.HTTP}}
store: {{.Store}}
links:
  - name: people
    url: {{.URL}}
    bind-dn: {{.BindDN}}
    password-file: {{.PW}}
    base: {{.Base}}
    keepalive: 2s
    keepalive-timeout: 2s
`

var demoHelp = template.Must(template.New("").Parse(`
replink is mirroring {{.Base}} from {{.URL}} into {{.Store}}.
Configuration: {{.Config}}   Status: http://{{.HTTP}}/status

Try, in another terminal:
  # watch the link
  curl -s http://{{.HTTP}}/status
  curl -s http://{{.HTTP}}/metrics | grep ^replink_

  # write an entry at the provider and watch it arrive
  printf 'dn: uid=newcomer,{{.Base}}\nobjectClass: inetOrgPerson\nuid: newcomer\ncn: New Comer\nsn: Comer\n' |
    ldapadd -x -H {{.URL}} -D {{.AdminDN}} -w {{.AdminPW}}

  # hang the provider: the keepalive detects it within 4 s (Polling), and the
  # link comes back once it resumes
  kill -STOP {{.Pid}}; sleep 6; kill -CONT {{.Pid}}

  # compare the copy with the provider
  diff <(curl -s http://{{.HTTP}}/links/people/ldif) \
       <(ldapsearch -LLL -o ldif-wrap=no -x -H {{.URL}} -D {{.BindDN}} -y {{.PW}} -b {{.Base}} | {{.Replink}} canon) && echo identical

  # stop and start the link by hand
  curl -s -X POST http://{{.HTTP}}/links/people/stop
  curl -s -X POST http://{{.HTTP}}/links/people/start

Ctrl-C stops replink (unbind, commit) and the provider; the copy is kept, and
{{.Replink}} dump --store {{.Store}} prints it then.

`))
