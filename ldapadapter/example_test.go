package ldapadapter_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

// A consumer with one link: mirror dc=example,dc=com into memory, resume
// from a cookie file after a restart, and log every state change.
func ExampleConsumer() {
	store := ldapadapter.NewMemoryStore()
	timers := fsm.DefaultConfig() // refreshAndPersist, keepalive 30s + 10s
	c := ldapadapter.NewConsumer()
	link, err := c.Add(ldapadapter.LinkConfig{
		Name:    "provider-a",
		Machine: timers,
		LDAP: ldapadapter.Config{
			URL:      "ldap://provider-a.example.com:389",
			StartTLS: true,
			BindDN:   "cn=replicator,dc=example,dc=com",
			Password: "secret",
			BaseDN:   "dc=example,dc=com",
			Handler:  store,
			Cookies:  ldapadapter.FileCookieStore{Path: "/var/lib/consumer/provider-a.cookie"},
		},
	})
	if err != nil {
		log.Fatal(err) // an invalid configuration names the field at fault
	}
	link.Watch(func(t fsm.Transition) { log.Print(t) })
	defer c.Shutdown() // unbind, save the cookie

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.StartAll(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := link.WaitFor(ctx, replink.Persisting, replink.Failed); err != nil {
		log.Print(err)
	}
}

// A handler that forwards changes to another system. Apply must be
// idempotent: after a crash the changes since the last saved cookie come
// again.
func ExampleHandlerFunc() {
	h := ldapadapter.HandlerFunc(func(ctx context.Context, c ldapadapter.Change) error {
		switch c.Op {
		case ldapadapter.Upsert:
			fmt.Println("upsert", c.UUID, c.DN)
		case ldapadapter.Delete:
			fmt.Println("delete", c.UUID)
		}
		return nil
	})
	_ = ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "dc=example,dc=com", Handler: h}
}
