package ldapadapter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

// A consumer with one link: mirror dc=example,dc=com into memory and log
// every state change. The copy lives in memory, so the cookie does too
// (no CookieStore): each process starts with a full load. A copy that must
// survive a restart needs a store that keeps its cookie with the data.
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
		},
	})
	if err != nil {
		log.Fatal(err) // an invalid configuration names the field at fault
	}
	link.Watch(func(t fsm.Transition) { log.Print(t) })
	defer c.Shutdown() // unbind; returns within each link's StopTimeout

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

// A configuration is checked before anything dials: the error names the
// field at fault and wraps ErrInvalidConfig.
func ExampleNew() {
	_, err := ldapadapter.New(ldapadapter.Config{
		URL:          "ldap://provider-a.example.com",
		BaseDN:       "dc=example,dc=com",
		Handler:      ldapadapter.NewMemoryStore(),
		SASLExternal: true, // but no TLS
	})
	fmt.Println(errors.Is(err, ldapadapter.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// invalid adapter configuration: SASLExternal needs ldaps:// or StartTLS: the identity is the TLS client certificate
}

// MemoryStore keys the copy by entryUUID, so a rename is an Upsert of the
// same UUID under a new DN, and a delete needs no DN at all.
func ExampleMemoryStore() {
	ctx := context.Background()
	s := ldapadapter.NewMemoryStore()
	id := uuid.MustParse("4b3c2a1e-0000-4000-8000-000000000001")
	upsert := func(dn string) ldapadapter.Change {
		e := ldap.NewEntry(dn, map[string][]string{"cn": {"Ada"}})
		return ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: dn, Entry: e}
	}
	_ = s.Apply(ctx, upsert("uid=ada,ou=people,dc=example,dc=com"))
	_ = s.Apply(ctx, upsert("uid=ada.lovelace,ou=people,dc=example,dc=com"))
	fmt.Println(s.Snapshot())
	_ = s.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Delete, UUID: id})
	fmt.Println(len(s.Snapshot()), s.Applied())
	fmt.Println(s.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Upsert, UUID: id, DN: "uid=x"}))
	// Output:
	// map[uid=ada.lovelace,ou=people,dc=example,dc=com:map[cn:[Ada]]]
	// 0 3
	// memory store: cannot apply upsert of "uid=x" without an entry
}
