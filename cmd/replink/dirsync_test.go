package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/sambatest"
	"github.com/replink/replink/ldapadapter"
)

const dirSyncConfig = `store: %s
changes: %s
links:
  - name: ad
    url: %s
    bind-dn: %s
    password-file: %s
    allow-cleartext-password: true
    base: %s
    mode: dirsync
    dirsync-poll: 1s
    keepalive: 1s
    keepalive-timeout: 1s
    backoff-initial: 100ms
    commit-interval: 200ms
`

// ldifCopy is the copy as /links/NAME/ldif shows it, read back by the
// objectGUID each entry shows: what realtarget.SambaDiff compares with the
// DC.
type ldifCopy map[uuid.UUID]*ldap.Entry

func readLDIFCopy(t *testing.T, p *proc, link string) ldifCopy {
	t.Helper()
	_, body := p.get("/links/" + link + "/ldif")
	entries, err := readLDIF(strings.NewReader(body))
	require.NoError(t, err)
	c := ldifCopy{}
	for _, e := range entries {
		g, err := uuid.Parse(e.GetAttributeValue("objectGUID"))
		if err != nil {
			i := strings.Index(body, "dn: "+e.DN+"\n")
			t.Fatalf("%s: objectGUID %q is not in its string form: %v\n%s", e.DN, e.GetAttributeValue("objectGUID"), err, body[i:min(len(body), i+3000)])
		}
		c[g] = e
	}
	return c
}

func (c ldifCopy) Known(context.Context) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, 0, len(c))
	for id := range c {
		ids = append(ids, id)
	}
	return ids, nil
}

func (c ldifCopy) Entry(_ context.Context, id uuid.UUID) (*ldap.Entry, error) { return c[id], nil }

// requireMirrors waits until the daemon's copy, read over HTTP, equals the
// DC by objectGUID; a deletion arrives with the next poll (dirsync-poll).
func requireMirrors(t *testing.T, p *proc, dc *sambatest.Server) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = realtarget.SambaDiff(t.Context(), dc, readLDIFCopy(t, p, "ad")); err == nil {
			return
		}
	}
	t.Fatalf("the copy never matched the DC: %v\n%s", err, p.log())
}

// feedByGUID replays the change feed: the records of each object.
func feedByGUID(t *testing.T, path string) (map[uuid.UUID][]feed.Record, int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	m := map[uuid.UUID][]feed.Record{}
	n := 0
	require.NoError(t, feed.Replay(bytes.NewReader(raw), func(r feed.Record) error {
		m[r.UUID] = append(m[r.UUID], r)
		n++
		return nil
	}))
	return m, n
}

// The daemon mirrors a real Active Directory DC (Samba) with `mode:
// dirsync`:
// the copy shows objectGUID as AD's tools print it, /status and /metrics
// report the link, a user added, modified and deleted on the DC reaches the
// copy and the feed, and after kill -9 a restart goes on from the stored
// cookie (it applies only what changed meanwhile, not the whole domain).
func TestDaemonMirrorsActiveDirectory(t *testing.T) {
	dc := sambatest.Start(t)
	const replPW = "Replicat0r-Pw!"
	repl, err := dc.CreateUser("rlsync", replPW)
	require.NoError(t, err)
	// A member of Domain Admins: with only "Replicating Directory Changes"
	// Samba leaves out what the identity may not read (docs/providers.md).
	require.NoError(t, dc.AddToGroup("CN=Domain Admins,"+sambatest.UsersDN, repl))
	users := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		users[name], err = dc.CreateUser(name, "Us3r-"+name+"-Pw!")
		require.NoError(t, err)
	}

	dir := t.TempDir()
	pw, store, changes, cfg := filepath.Join(dir, "pw"), filepath.Join(dir, "ad.db"), filepath.Join(dir, "changes.jsonl"), filepath.Join(dir, "replink.yaml")
	require.NoError(t, os.WriteFile(pw, []byte(replPW+"\n"), 0o600))
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(dirSyncConfig, store, changes, dc.URL(), repl, pw, sambatest.BaseDN)), 0o600))

	p := start(t, "--config", cfg)
	p.waitState("ad", "Persisting", 60*time.Second)
	requireMirrors(t, p, dc)
	st := p.status()[0]
	require.Equal(t, ldapadapter.ProtocolDirSync, st.Protocol)
	require.Equal(t, dc.URL(), st.Provider)
	require.Positive(t, st.ReceivedBytes)
	entries := st.Entries
	require.Greater(t, entries, 100, "a fresh domain holds a few hundred objects")
	require.Eventually(t, func() bool {
		_, m := p.get("/metrics")
		return strings.Contains(m, `replink_link_state{link="ad",state="Persisting"} 1`) &&
			strings.Contains(m, fmt.Sprintf(`replink_entries{link="ad"} %d`, entries))
	}, 10*time.Second, 50*time.Millisecond)

	// objectGUID as Samba's own tool prints it, not base64.
	show, err := dc.Tool("user", "show", "alice", "--attributes=objectGUID")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^objectGUID: ([0-9a-f-]{36})$`).FindStringSubmatch(show)
	require.NotNil(t, m, "samba-tool user show: %s", show)
	_, ldif := p.get("/links/ad/ldif")
	require.Contains(t, ldif, "dn: "+users["alice"]+"\n")
	require.Contains(t, ldif, "objectGUID: "+m[1]+"\n")
	alice := uuid.MustParse(m[1])

	// A user added, one modified, one deleted (a deletion, which Samba
	// does not notify, comes with the next poll).
	dave, err := dc.CreateUser("dave", "Us3r-dave-Pw!")
	require.NoError(t, err)
	require.NoError(t, dc.ModifyAttr(users["bob"], "description", "moved to sales"))
	carol, err := dc.GUID(users["carol"])
	require.NoError(t, err)
	require.NoError(t, dc.DeleteUser(users["carol"]))
	bob, err := dc.GUID(users["bob"])
	require.NoError(t, err)
	daveID, err := dc.GUID(dave)
	require.NoError(t, err)
	requireMirrors(t, p, dc)
	require.Eventually(t, func() bool {
		recs, _ := feedByGUID(t, changes)
		last := func(id uuid.UUID) feed.Record {
			if r := recs[id]; len(r) > 0 {
				return r[len(r)-1]
			}
			return feed.Record{}
		}
		described := false
		for _, mod := range last(bob).Mods {
			described = described || (mod.Attr == "description" && len(mod.Values) == 1 && string(mod.Values[0]) == "moved to sales")
		}
		return last(daveID).Op == ldapadapter.Upsert && last(daveID).DN == dave &&
			last(carol).Op == ldapadapter.Delete && described
	}, 10*time.Second, 50*time.Millisecond, "the feed lacks the add, the modify or the delete")

	// kill -9, writes while the daemon is down, a restart.
	time.Sleep(500 * time.Millisecond) // past a commit interval: the cookie covers the copy
	p.kill()
	_, before := feedByGUID(t, changes)
	require.NoError(t, dc.ModifyAttr(users["alice"], "description", "written while replink was down"))
	erin, err := dc.CreateUser("erin", "Us3r-erin-Pw!")
	require.NoError(t, err)
	require.NoError(t, dc.DeleteUser(dave))

	p = start(t, "--config", cfg)
	p.waitState("ad", "Persisting", 60*time.Second)
	requireMirrors(t, p, dc)
	st = p.status()[0]
	require.Equal(t, entries, st.Entries, "dave and erin in, carol and dave out")
	// From the stored cookie the DC sends what changed while the daemon
	// was down (alice, erin, dave's tombstone, and objects such as the RID
	// set that a user creation touches); a full resync would apply every
	// object of the domain again.
	t.Logf("after the restart: %d changes applied, %d entries held", st.ChangesApplied, st.Entries)
	require.Positive(t, st.ChangesApplied)
	require.Less(t, st.ChangesApplied, int64(entries/10), "a restart resynchronized in full: %d changes applied, %d entries", st.ChangesApplied, entries)
	recs, after := feedByGUID(t, changes)
	require.Less(t, after-before, entries/10, "the feed after the restart: %d records", after-before)
	erinID, err := dc.GUID(erin)
	require.NoError(t, err)
	require.Equal(t, ldapadapter.Upsert, recs[erinID][len(recs[erinID])-1].Op)
	require.Equal(t, ldapadapter.Delete, recs[daveID][len(recs[daveID])-1].Op)
	require.Equal(t, "written while replink was down", recs[alice][len(recs[alice])-1].Entry().GetAttributeValue("description"))
	require.Equal(t, 0, p.stop(), "SIGTERM is a clean stop:\n%s", p.log())
	require.NotContains(t, p.log(), replPW)
}
