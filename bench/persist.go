package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// latencies is a sorted sample.
type latencies []time.Duration

func (l latencies) at(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// notifier is a Handler that says when each DN arrives.
type notifier struct {
	mu      sync.Mutex
	waiting map[string]chan time.Time
}

func newNotifier() *notifier { return &notifier{waiting: map[string]chan time.Time{}} }

func (n *notifier) wait(dn string) chan time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := make(chan time.Time, 1)
	n.waiting[ldapLower(dn)] = c
	return c
}

func (n *notifier) Apply(_ context.Context, c ldapadapter.Change) error {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch, ok := n.waiting[ldapLower(c.DN)]; ok && c.Op == ldapadapter.Upsert {
		ch <- now
		delete(n.waiting, ldapLower(c.DN))
	}
	return nil
}

func (n *notifier) Known(context.Context) ([]uuid.UUID, error) { return nil, nil }

// persistSection adds entries one at a time at the provider and measures
// how long each takes to reach the handler of a persisting link.
func persistSection(ctx context.Context, h *slapdtest.Harness, s settings) (lat, adds latencies) {
	srv := slapdtest.Start(h, slapdtest.WithPeople(10))
	n := newNotifier()
	_, done := persistingLink(ctx, h, srv.URL(), n, fsm.DefaultConfig())
	defer done()
	admin, err := srv.Admin()
	if err != nil {
		h.Fatal(err)
	}
	defer admin.Close()
	for i := range s.adds {
		dn := fmt.Sprintf("uid=latency%d,%s", i, slapdtest.PeopleDN)
		arrived := n.wait(dn)
		start := time.Now()
		if err := admin.Add(person(dn, fmt.Sprintf("latency%d", i))); err != nil {
			h.Fatal(err)
		}
		adds = append(adds, time.Since(start))
		select {
		case t := <-arrived:
			lat = append(lat, t.Sub(start))
		case <-time.After(10 * time.Second):
			h.Fatalf("%s never reached the handler", dn)
		}
	}
	slices.Sort(lat)
	slices.Sort(adds)
	return lat, adds
}

func person(dn, uid string) *ldap.AddRequest {
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{"Bench " + uid})
	req.Attribute("sn", []string{"Bench"})
	return req
}

// persistingLink starts a link on url and waits until it persists. The
// link is a Consumer's, as the daemon's are (a persisting link then waits
// in the Consumer's poller); done shuts the Consumer down.
func persistingLink(ctx context.Context, h *slapdtest.Harness, url string, handler ldapadapter.Handler, m fsm.Config) (l *ldapadapter.Link, done func()) {
	c := ldapadapter.NewConsumer(fsm.WithLogger(quiet))
	l, err := c.Add(ldapadapter.LinkConfig{Name: "bench", Machine: m, LDAP: ldapadapter.Config{
		URL: url, BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
		BaseDN: slapdtest.PeopleDN, Handler: handler, Logger: quiet,
	}})
	if err != nil {
		h.Fatal(err)
	}
	persist(ctx, h, l)
	return l, func() { c.Shutdown() }
}

// persist starts l and waits until it persists.
func persist(ctx context.Context, h *slapdtest.Harness, l *ldapadapter.Link) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := l.Start(ctx); err != nil {
		h.Fatal(err)
	}
	if _, err := l.WaitFor(ctx, replink.Persisting); err != nil {
		h.Fatalf("link never persisted: %v %v", err, l.History())
	}
}
