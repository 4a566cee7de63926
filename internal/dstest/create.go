package dstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/replink/replink/internal/slapdtest"
)

// packagedDefaults is where Debian's 389-ds-base keeps the paths and
// switches dscreate starts from.
const packagedDefaults = "/usr/share/dirsrv/inf/defaults.inf"

// systemPath matches a defaults.inf value that names a system directory.
var systemPath = regexp.MustCompile(`(?m)^(\w+ = )/(etc|var|run|dev/shm|tmp)\b`)

// create lays out a private prefix and runs dscreate in it. dscreate
// refuses to work without systemd unless it reads a defaults.inf with
// with_systemd = 0, which it looks for under $PREFIX; the copy also moves
// every system path (config, database, logs, run) into the prefix.
func (s *Server) create() error {
	for _, d := range []string{"etc", "var", "run", "tmp", "dev/shm", "share/dirsrv/inf"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return err
		}
	}
	if out, err := exec.Command("cp", "-r", "/etc/dirsrv", filepath.Join(s.Dir, "etc")).CombinedOutput(); err != nil {
		return fmt.Errorf("copy /etc/dirsrv: %v: %s", err, out)
	}
	def, err := os.ReadFile(packagedDefaults)
	if err != nil {
		return fmt.Errorf("389-ds defaults: %w", err)
	}
	inf := strings.Replace(string(def), "with_systemd = 1", "with_systemd = 0", 1)
	inf = systemPath.ReplaceAllString(inf, "${1}"+s.Dir+"/${2}")
	if err := os.WriteFile(filepath.Join(s.Dir, "share/dirsrv/inf/defaults.inf"), []byte(inf), 0o600); err != nil {
		return err
	}
	answers := fmt.Sprintf(`[general]
full_machine_name = localhost
start = False
strict_host_checking = False
[slapd]
instance_name = %s
port = %d
secure_port = %d
self_sign_cert = False
root_dn = %s
root_password = %s
user = root
group = root
[backend-userroot]
suffix = %s
create_suffix_entry = True
sample_entries = no
`, instance, s.Port, slapdtest.FreePort(s.t), ManagerDN, ManagerPW, slapdtest.BaseDN)
	af := filepath.Join(s.Dir, "instance.inf")
	if err := os.WriteFile(af, []byte(answers), 0o600); err != nil {
		return err
	}
	_, dscreate := Binaries()
	cmd := exec.Command(dscreate, "from-file", af)
	cmd.Env = append(os.Environ(), "PREFIX="+s.Dir)
	cmd.Dir = s.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dscreate: %v: %s", err, out)
	}
	return s.configure()
}

// configure edits dse.ldif while the server is down: the two plugins
// RFC 4533 needs, a loopback-only listener, and caches sized for a test
// rather than autotuned to the machine (1.5 GB of database cache each).
func (s *Server) configure() error {
	p := filepath.Join(s.configDir(), "dse.ldif")
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	d := parseDSE(string(b))
	edits := []struct{ dn, attr, value string }{
		{"cn=config", "nsslapd-listenhost", s.Host},
		{"cn=config", "nsslapd-accesslog-logging-enabled", "off"},
		{"cn=config", "nsslapd-ldapilisten", "off"},
		{"cn=Retro Changelog Plugin,cn=plugins,cn=config", "nsslapd-pluginEnabled", "on"},
		// Content Sync names a deleted entry by the nsuniqueid the
		// changelog recorded; without it deletes cannot be reported.
		{"cn=Retro Changelog Plugin,cn=plugins,cn=config", "nsslapd-attribute", "nsuniqueid:targetUniqueId"},
		{"cn=Content Synchronization,cn=plugins,cn=config", "nsslapd-pluginEnabled", "on"},
		{"cn=config,cn=ldbm database,cn=plugins,cn=config", "nsslapd-cache-autosize", "0"},
		{"cn=config,cn=ldbm database,cn=plugins,cn=config", "nsslapd-dbcachesize", "16777216"},
		{"cn=userroot,cn=ldbm database,cn=plugins,cn=config", "nsslapd-cachememsize", "16777216"},
	}
	for _, e := range edits {
		if err := d.set(e.dn, e.attr, e.value); err != nil {
			return err
		}
	}
	return os.WriteFile(p, []byte(d.String()), 0o600)
}

// seed adds what slapdtest's servers hold: ou=people and the replicator,
// who may read everything in the suffix, with no size, time or
// look-through limit: 389-ds ends a search by anyone but the Directory
// Manager after 2,000 entries (result 4), sync searches included.
func (s *Server) seed() error {
	c, err := s.Admin()
	if err != nil {
		return err
	}
	defer c.Close()
	aci := ldap.NewModifyRequest(slapdtest.BaseDN, nil)
	aci.Add("aci", []string{fmt.Sprintf(`(targetattr="*")(version 3.0; acl "replicator reads all"; allow (read, search, compare) userdn="ldap:///%s";)`, slapdtest.ReplicatorDN)})
	if err := c.Modify(aci); err != nil {
		return fmt.Errorf("replicator aci: %w", err)
	}
	for _, add := range []*ldap.AddRequest{
		entry(slapdtest.ReplicatorDN, "objectClass", "person", "cn", "replicator", "sn", "replicator", "userPassword", slapdtest.ReplicatorPW,
			"nsSizeLimit", "-1", "nsTimeLimit", "-1", "nsLookThroughLimit", "-1"),
		entry(slapdtest.PeopleDN, "objectClass", "organizationalUnit", "ou", "people"),
	} {
		if err := c.Add(add); err != nil {
			return fmt.Errorf("add %s: %w", add.DN, err)
		}
	}
	return nil
}

func entry(dn string, kv ...string) *ldap.AddRequest {
	r := ldap.NewAddRequest(dn, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Attribute(kv[i], []string{kv[i+1]})
	}
	return r
}
