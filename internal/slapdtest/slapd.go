// Package slapdtest starts real OpenLDAP slapd providers for tests and
// injects real faults into them: signals, restarts, a TCP proxy that closes,
// resets, black-holes or idle-cuts flows, and a provider inside a network
// namespace that can vanish without a FIN.
//
// Every slapd runs from its own configuration in a temporary directory on a
// free loopback port (never the system service), and is ended by the test
// that started it, by process id.
package slapdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Fixed names of the test directory.
const (
	BaseDN       = "dc=example,dc=com"
	PeopleDN     = "ou=people," + BaseDN
	AdminDN      = "cn=admin," + BaseDN
	AdminPW      = "admin-secret"
	ReplicatorDN = "cn=replicator," + BaseDN
	ReplicatorPW = "replicator-secret"
)

// TB is the part of testing.TB the harness uses, so that a command (the
// demo) can drive it too.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
	Cleanup(func())
	TempDir() string
}

// Binary is the slapd found on PATH or in /usr/sbin, or "".
func Binary() string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/slapd"); err == nil {
		return "/usr/sbin/slapd"
	}
	return ""
}

// Require skips the test when slapd is missing, saying how to install it;
// under CI=true it fails instead, so a broken CI image cannot pass silently.
func Require(t TB) string {
	t.Helper()
	bin := Binary()
	if bin != "" {
		return bin
	}
	msg := "slapd not installed: apt-get install slapd ldap-utils (the tests start their own slapd; the system service is not used)"
	Missing(t, msg)
	return ""
}

// Server is one slapd process and its data directory; it can be stopped,
// killed, paused and started again on the same data and address.
type Server struct {
	t    TB
	bin  string
	Dir  string
	Host string
	Port int
	// Exec prefixes the slapd command line (ip netns exec NAME).
	Exec []string
	// TLS is set by the WithTLS option.
	TLS *TLS
	// People is how many people slapadd loads before the start (WithPeople).
	People int
	// Syncrepl makes this slapd an OpenLDAP consumer (WithSyncrepl): the
	// directive is added to its database, which starts with the suffix only.
	Syncrepl string
	// ServerID is the global serverID of a multi-provider member.
	ServerID int
	// SuffixOnly starts the database with the suffix entry alone.
	SuffixOnly bool
	// Empty starts the database with no entry at all: a multi-provider
	// member that takes everything from its peer.
	Empty bool
	// Accesslog logs every write of the main database into an accesslog
	// database under LogDN, for delta-syncrepl consumers (WithAccesslog);
	// LogPurge is its logpurge setting ("" keeps records for ever).
	Accesslog bool
	LogPurge  string

	Proc
}

// Start writes a configuration, loads the base entries and starts slapd on
// a free port of host ("" means 127.0.0.1).
func Start(t TB, opts ...func(*Server)) *Server {
	t.Helper()
	s := &Server{t: t, bin: Require(t), Dir: t.TempDir(), Host: "127.0.0.1"}
	for _, o := range opts {
		o(s)
	}
	if s.Port == 0 {
		s.Port = FreePort(t)
	}
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	s.Launch()
	t.Cleanup(s.Kill)
	return s
}

// WithPeople loads n people under ou=people with slapadd before slapd
// starts: thousands of entries in a second, where adds over LDAP take one
// fsync each.
func WithPeople(n int) func(*Server) { return func(s *Server) { s.People = n } }

// LogDN is the suffix of the accesslog database of WithAccesslog.
const LogDN = "cn=accesslog"

// WithAccesslog makes the server a delta-syncrepl provider: an accesslog
// database (cn=accesslog, with syncprov, nopresent and reloadhint),
// declared before the main one, logs every successful write. purge is
// slapo-accesslog's logpurge, "<age> <interval>" ("00:00:20 00:00:10"
// purges records older than 20 s every 10 s), or "" for none.
func WithAccesslog(purge string) func(*Server) {
	return func(s *Server) { s.Accesslog, s.LogPurge = true, purge }
}

// WithSyncrepl makes the server an OpenLDAP consumer of its own, for
// comparing replink with the consumer OpenLDAP ships: directive is a
// syncrepl line (see slapd.conf(5)); the database starts with the suffix
// entry alone and syncrepl brings the rest.
func WithSyncrepl(directive string) func(*Server) {
	return func(s *Server) { s.Syncrepl, s.SuffixOnly = directive, true }
}

// StartPair starts two slapd servers that are multi-provider replicas of
// each other (serverID 1 and 2, syncrepl both ways, multiprovider on): a
// holds the base entries and n people; b starts empty and takes everything
// from a. It returns once b holds what a holds.
func StartPair(t TB, n int) (a, b *Server) {
	t.Helper()
	pa, pb := FreePort(t), FreePort(t)
	peer := func(port, rid int) string {
		return fmt.Sprintf(`syncrepl rid=%03d provider=ldap://127.0.0.1:%d bindmethod=simple binddn="%s" credentials=%s searchbase="%s" type=refreshAndPersist retry="1 +"
multiprovider on`, rid, port, ReplicatorDN, ReplicatorPW, BaseDN)
	}
	a = Start(t, WithPeople(n), func(s *Server) { s.Port, s.ServerID, s.Syncrepl = pa, 1, peer(pb, 2) })
	b = Start(t, func(s *Server) { s.Port, s.ServerID, s.Syncrepl, s.Empty = pb, 2, peer(pa, 1), true })
	deadline := time.Now().Add(30 * time.Second)
	for {
		wa, errA := a.Snapshot(context.Background(), BaseDN)
		wb, errB := b.Snapshot(context.Background(), BaseDN)
		if errA == nil && errB == nil && len(wa) == len(wb) && len(wa) > 0 {
			return a, b
		}
		if time.Now().After(deadline) {
			t.Fatalf("multi-provider pair never converged: %d vs %d entries (%v, %v)", len(wa), len(wb), errA, errB)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port nobody listens on right now.
func FreePort(t TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) conf() string { return filepath.Join(s.Dir, "slapd.conf") }

func (s *Server) init() error {
	db := filepath.Join(s.Dir, "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return err
	}
	global := ""
	if s.ServerID != 0 {
		global = fmt.Sprintf("serverID %d\n", s.ServerID)
	}
	logdb, accesslog := "", ""
	if s.Accesslog {
		ldb := filepath.Join(s.Dir, "accesslog")
		if err := os.MkdirAll(ldb, 0o700); err != nil {
			return err
		}
		// The log database comes first: the main one names it.
		// nis.schema brings posixAccount, whose uidNumber (INTEGER) takes
		// the increment modification.
		logdb = fmt.Sprintf(`include /etc/ldap/schema/nis.schema
moduleload accesslog
access to dn.base="" by * read
database mdb
maxsize 104857600
suffix "%s"
directory %s
index objectClass,entryCSN,reqStart,reqEnd,reqResult eq
index reqDN eq
limits dn.exact="%s" size=unlimited time=unlimited
access to * by dn.exact="%s" read by * none
overlay syncprov
syncprov-nopresent TRUE
syncprov-reloadhint TRUE
`, LogDN, ldb, ReplicatorDN, ReplicatorDN)
		accesslog = fmt.Sprintf("overlay accesslog\nlogdb \"%s\"\nlogops writes\nlogsuccess TRUE\n", LogDN)
		if s.LogPurge != "" {
			accesslog += "logpurge " + s.LogPurge + "\n"
		}
	}
	conf := global + fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
pidfile %s/slapd.pid
loglevel none
`+logdb+`database mdb
maxsize %d
suffix "%s"
rootdn "%s"
rootpw %s
directory %s
index objectClass,entryCSN,entryUUID eq
limits dn.exact="%s" size=unlimited time=unlimited
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="%s" read by * none
%s
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 1000
`+accesslog, s.Dir, max(100<<20, s.People<<12), BaseDN, AdminDN, AdminPW, db, ReplicatorDN, ReplicatorDN, s.Syncrepl)
	if s.TLS != nil {
		conf = s.TLS.conf() + conf
	}
	if err := os.WriteFile(s.conf(), []byte(conf), 0o600); err != nil {
		return err
	}
	ldif := fmt.Sprintf(`dn: %s
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: %s
objectClass: person
cn: replicator
sn: replicator
userPassword: %s

dn: %s
objectClass: organizationalUnit
ou: people
`, BaseDN, ReplicatorDN, ReplicatorPW, PeopleDN)
	if s.Empty {
		return nil // no entry: syncrepl brings them all
	}
	var b strings.Builder
	if s.SuffixOnly { // syncrepl brings the rest
		ldif, _, _ = strings.Cut(ldif, "\n\n")
		ldif += "\n"
	}
	b.WriteString(ldif)
	for i := range s.People {
		fmt.Fprintf(&b, "\ndn: uid=p%d,%s\nobjectClass: inetOrgPerson\nuid: p%d\ncn: Person %d\nsn: P%d\nmail: p%d@example.com\ndescription: loaded with the directory, to give each entry a realistic size\n", i, PeopleDN, i, i, i, i)
	}
	lf := filepath.Join(s.Dir, "base.ldif")
	if err := os.WriteFile(lf, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command(filepath.Join(filepath.Dir(s.bin), "slapadd"), "-q", "-b", BaseDN, "-f", s.conf(), "-l", lf).CombinedOutput(); err != nil {
		// slapadd is slapd itself under another name on Debian.
		if out2, err2 := exec.Command(s.bin, "-T", "add", "-q", "-b", BaseDN, "-f", s.conf(), "-l", lf).CombinedOutput(); err2 != nil {
			return fmt.Errorf("slapadd: %v: %s / %s", err, out, out2)
		}
	}
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// URL is ldap://host:port.
func (s *Server) URL() string { return "ldap://" + s.Addr() }

// Launch starts slapd on the existing data and waits until it accepts LDAP.
func (s *Server) Launch() {
	s.t.Helper()
	urls := "ldap://" + s.Addr() + "/"
	if s.TLS != nil {
		urls += " " + s.LDAPSURL() + "/"
	}
	args := append(append([]string{}, s.Exec...), s.bin, "-d", "0", "-f", s.conf(), "-h", urls)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.Started(cmd)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := ldap.DialURL(s.URL(), ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err == nil {
			err = c.Bind(AdminDN, AdminPW)
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("slapd on %s not ready after 15s: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts slapd down cleanly (SIGTERM) and waits, killing it after 10s.
func (s *Server) Stop() { s.End(syscall.SIGTERM, 10*time.Second) }

// Kill ends slapd at once (SIGKILL) and waits for it.
func (s *Server) Kill() { s.End(syscall.SIGKILL, 10*time.Second) }

// Admin returns a connection bound as the root DN; the caller closes it.
func (s *Server) Admin() (*ldap.Conn, error) { return Bind(s.URL(), AdminDN, AdminPW) }

// Snapshot is what the replicator may read under base: DN → attribute →
// sorted values.
func (s *Server) Snapshot(ctx context.Context, base string) (map[string]map[string][]string, error) {
	return SnapshotOf(ctx, s.URL(), base)
}

// SnapshotOf is what the replicator may read under base at url: DN →
// attribute → sorted values.
func SnapshotOf(ctx context.Context, url, base string) (map[string]map[string][]string, error) {
	c, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(ReplicatorDN, ReplicatorPW); err != nil {
		return nil, err
	}
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]string{}
	for _, e := range res.Entries {
		m := map[string][]string{}
		for _, a := range e.Attributes {
			v := append([]string(nil), a.Values...)
			sort.Strings(v)
			m[a.Name] = v
		}
		out[e.DN] = m
	}
	return out, nil
}

// ErrNotRunning is returned by operations that need a running slapd.
var ErrNotRunning = errors.New("slapd not running")
