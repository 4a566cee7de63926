package sambatest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The template is one provisioned domain per test binary, made on first
// use when the binary's TestMain runs Main, and removed when Main returns.
var template struct {
	sync.Mutex
	enabled bool
	dir     string
	took    time.Duration
	err     error
}

// Main runs the tests with a provisioned template that Start copies for
// each server (a copy takes a fraction of a second, a provision about
// 13 s), then removes the template. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(sambatest.Main(m)) }
func Main(m *testing.M) int {
	done := UseTemplate()
	defer done()
	return m.Run()
}

// UseTemplate is Main for a program that is not a test binary (the tour):
// from now on Start copies one template, provisioned at first use, until
// the returned function removes it.
func UseTemplate() (done func()) {
	template.Lock()
	template.enabled = true
	template.Unlock()
	return func() {
		template.Lock()
		defer template.Unlock()
		if template.dir != "" {
			os.RemoveAll(template.dir)
			template.dir = ""
		}
		template.enabled = false
	}
}

// TemplateProvisioned is how long the template took to provision, or 0
// when there is none yet.
func TemplateProvisioned() time.Duration {
	template.Lock()
	defer template.Unlock()
	return template.took
}

// provisionInto puts a ready domain into dir: a copy of the template when
// Main runs and fresh is false, else a provision of its own.
func provisionInto(dir string, fresh bool) error {
	template.Lock()
	useTemplate := template.enabled && !fresh
	if useTemplate && template.dir == "" && template.err == nil {
		template.dir, template.err = os.MkdirTemp("", "sambatest-template-")
		if template.err == nil {
			t0 := time.Now()
			template.err = provision(template.dir)
			template.took = time.Since(t0)
		}
	}
	src, err := template.dir, template.err
	template.Unlock()
	if !useTemplate {
		return provision(dir)
	}
	if err != nil {
		return fmt.Errorf("template: %w", err)
	}
	if out, err := exec.Command("cp", "-a", src+"/.", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("copy template: %v: %s", err, out)
	}
	return rewriteConf(dir, src)
}

// provision runs samba-tool domain provision into dir and prepares the
// result for a foreground, LDAP-only start in a namespace.
func provision(dir string) error {
	_, tool := Binaries()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "domain", "provision",
		"--use-rfc2307", "--realm="+Realm, "--domain="+Domain, "--server-role=dc",
		"--dns-backend=NONE", "--adminpass="+AdminPW, "--host-name=dc1",
		"--targetdir="+dir, "--option=interfaces=lo", "--option=bind interfaces only=yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("samba-tool domain provision: %v: %s", err, tail(out))
	}
	if err := rewriteConf(dir, dir); err != nil {
		return err
	}
	return writeTLS(filepath.Join(dir, "private", "tls"))
}

var (
	globalLine  = regexp.MustCompile(`(?m)^\[global\]\n`)
	dropLines   = regexp.MustCompile(`(?m)^\s*(log file|logging|bind interfaces only|ldap server require strong auth|pid directory|ncalrpc dir|winbindd socket directory)\s*=.*\n`)
	ownSettings = "\tbind interfaces only = No\n" + // all addresses of its own namespace
		"\tldap server require strong auth = no\n" + // simple binds over ldap://
		"\tlogging = stdout\n" +
		// Nothing under /run/samba: a pid file there would stop the
		// next DC ("samba is already running").
		"\tpid directory = %[1]s/run\n" +
		"\tncalrpc dir = %[1]s/run/ncalrpc\n" +
		"\twinbindd socket directory = %[1]s/run/winbindd\n"
)

// rewriteConf points dir's smb.conf (written for from) at dir and sets
// what the tests need: simple binds over plain LDAP, listening on the
// namespace's address, logging to the process's output.
func rewriteConf(dir, from string) error {
	p := filepath.Join(dir, "etc", "smb.conf")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	s := strings.ReplaceAll(string(b), from, dir)
	s = dropLines.ReplaceAllString(s, "")
	s = globalLine.ReplaceAllLiteralString(s, "[global]\n"+fmt.Sprintf(ownSettings, dir))
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(s), 0o644)
}

// writeTLS writes the self-signed certificate samba would otherwise
// generate (an RSA key, about 2.5 s) at its first start.
func writeTLS(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "dc1." + strings.ToLower(Realm), Organization: []string{"replink sambatest"}},
		DNSNames:              []string{"dc1." + strings.ToLower(Realm)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, data := range map[string][]byte{
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}),
		"cert.pem": cert,
		"ca.pem":   cert,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// loadUsers is the Python (Samba's own bindings, as samba-tool uses them)
// that LoadUsers runs: n users on the stopped DC's sam.ldb, through the
// same modules an LDAP add goes through (SIDs, RIDs, defaults), without a
// network round trip or a commit per user, in transactions of 1,000.
//
// ldb's batch_mode is what makes it fast. Without it, each add runs in a
// sub-transaction of its own whose commit copies every index list the add
// touched into the transaction's cache (ldb_kv_index_sub_transaction_commit:
// a talloc_memdup of each list); the lists every user joins (objectClass,
// objectCategory...) grow with the users, so an add cost time in
// proportion to the users already there: the profile (perf, --call-graph
// dwarf) was malloc, memmove and talloc_memdup under that commit, 1,000
// users took 7, 16, then 21 s. In batch mode an add applies to the
// transaction directly (a failure fails the whole transaction, which is
// cancelled anyway): 1,000 users took 7, 5, then 4 s, same machine, same
// time. Splitting the load into transactions or the users into OUs did
// not help; batch mode did.
const loadUsers = `
import sys
from samba.samdb import SamDB
from samba.auth import system_session
from samba.param import LoadParm
conf, url, base, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lp = LoadParm()
lp.load(conf)
db = SamDB(url=url, session_info=system_session(), lp=lp, options=["batch_mode:1"])
per = 1000
for start in range(0, n, per):
    db.transaction_start()
    try:
        for i in range(start, min(n, start + per)):
            name = "u%05d" % i
            db.add({"dn": "CN=%s,CN=Users,%s" % (name, base), "objectClass": "user",
                    "sAMAccountName": name, "givenName": "Given%d" % i, "sn": "Family%d" % (i % 997),
                    "displayName": "Given%d Family%d" % (i, i % 997), "mail": name + "@replink.test",
                    "title": "Engineer", "department": "Dept %d" % (i % 20), "description": "bench user " + name})
    except BaseException:
        db.transaction_cancel()
        raise
    db.transaction_commit()
`

// LoadedUserDN is the DN of LoadUsers' user i.
func LoadedUserDN(i int) string { return UserDN(fmt.Sprintf("u%05d", i)) }

// LoadUsers adds n users (LoadedUserDN) to the DC's domain offline: it
// stops the DC, writes through Samba's Python bindings, and starts it
// again. They are disabled accounts without a
// password, each with givenName, sn, displayName, mail, title, department
// and description. An LDAP add costs the DC a commit per user (about 50
// users/s here); this loads thousands in seconds, for benchmarks
// (see loadUsers for what it costs).
func (s *Server) LoadUsers(n int) error {
	python := "/usr/bin/python3" // Debian's samba bindings are for the system Python
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", loadUsers, s.conf(),
		filepath.Join(s.Dir, "private", "sam.ldb"), BaseDN, fmt.Sprint(n)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("loading %d users: %v: %s", n, err, tail(out))
	}
	s.Launch()
	return nil
}
