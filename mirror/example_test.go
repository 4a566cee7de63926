package mirror_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
)

// A mirror is built from a Config; New opens the stores and adds the
// links, stopped, so a store refusing a link fails here, before anything
// connects.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "mirror-example-")
	defer os.RemoveAll(dir)
	m, err := mirror.New(mirror.Config{
		Logger: slog.New(slog.DiscardHandler),
		Links: []mirror.LinkConfig{{
			Name:    "people",
			LDAP:    ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "ou=people,dc=example,dc=com"},
			Machine: fsm.DefaultConfig(),
			Store:   filepath.Join(dir, "replica.db"),
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // a mirror never run is closed by hand
	for _, s := range m.Status() {
		fmt.Println(s.Name, s.Base, s.State, s.Entries)
	}
	// Output: people ou=people,dc=example,dc=com Stopped 0
}

// A server embeds a durable mirror with its feed, metrics and admin
// surface: Run until SIGTERM, Reload on SIGHUP, Handler on a port of its
// own. (Compiled, not run: it needs a provider.)
func ExampleMirror_Run() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	changes, err := feed.Open("/var/lib/myserver/changes.jsonl")
	if err != nil {
		log.Fatal(err)
	}
	cfg := mirror.Config{
		Feed: changes, // any mirror.Feed; the mirror closes it
		Links: []mirror.LinkConfig{{
			Name: "people",
			LDAP: ldapadapter.Config{
				URL: "ldaps://ldap.example.com", BindDN: "cn=replicator,dc=example,dc=com", Password: os.Getenv("PW"),
				BaseDN: "ou=people,dc=example,dc=com",
			},
			Machine: fsm.DefaultConfig(),
			Store:   "/var/lib/myserver/replica.db",
		}},
	}
	m, err := mirror.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:8389")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, m.Handler())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := m.Reload(ctx, cfg); err != nil { // all or nothing
				slog.Error("configuration rejected", "err", err)
			}
		}
	}()
	if err := m.Run(ctx); err != nil { // returns once every link is stopped and committed
		log.Fatal(err)
	}
}
