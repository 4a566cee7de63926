package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// A store link is both the Handler and the CookieStore of its link: give it
// as Config.Handler and leave Config.Cookies nil. Here it is fed by hand.
func Example() {
	dir, _ := os.MkdirTemp("", "replink-example-")
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "replica.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	people, err := db.Link("people", store.Content{BaseDN: "ou=people,dc=example,dc=com", Scope: "sub", Filter: "(objectClass=*)"})
	if err != nil {
		log.Fatal(err)
	}
	_ = ldapadapter.Config{URL: "ldap://127.0.0.1:389", BaseDN: "ou=people,dc=example,dc=com", Handler: people}

	ctx := context.Background()
	dn := "uid=ada,ou=people,dc=example,dc=com"
	people.Apply(ctx, ldapadapter.Change{Op: ldapadapter.Upsert, UUID: uuid.New(), DN: dn,
		Entry: ldap.NewEntry(dn, map[string][]string{"cn": {"Ada Lovelace"}})})
	people.Save([]byte("rid=000,csn=1")) // the change and its cookie, in one transaction
	db.Each("people", func(e *ldap.Entry) error {
		fmt.Println(e.DN, e.GetAttributeValue("cn"))
		return nil
	})
	_, err = db.Link("people", store.Content{BaseDN: "dc=example,dc=com", Scope: "sub", Filter: "(objectClass=*)"})
	fmt.Println(err != nil)
	// Output:
	// uid=ada,ou=people,dc=example,dc=com Ada Lovelace
	// true
}
