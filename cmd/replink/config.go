package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.yaml.in/yaml/v3"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/mirror"
)

// config is what `replink run` runs: from a YAML file, or one link from
// flags. Every value is checked before anything connects.
type config struct {
	HTTP          string
	AllowExternal bool     // serve HTTP on a non-loopback address (with a token)
	HTTPTokenFile string   // the admin surface's bearer token, in a file
	HTTPRedact    []string // attributes /links/NAME/ldif redacts; nil: mirror.DefaultRedacted
	Changes       string
	LogFormat     string
	LogLevel      slog.Level
	Links         []mirror.LinkConfig
	// Warnings are worth a log line but stop nothing (a secret readable by
	// others).
	Warnings []string
}

// top sums up the settings besides links, as the file gives them.
func (c *config) top() string {
	return fmt.Sprint(c.HTTP, c.AllowExternal, c.HTTPTokenFile, c.HTTPRedact, c.Changes, c.LogFormat, c.LogLevel)
}

// fieldError is a bad value, located: file:line: field: message.
type fieldError struct {
	Where string
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Where + ": " + e.Field + ": " + e.Msg }

// source reads typed values out of a YAML mapping (or out of flags, with
// the same rules), collecting every error rather than stopping at the first.
type source struct {
	file     string
	flags    bool // the one-link flags: a key is shown as --key
	errs     []error
	warnings []string
}

// show is how a message names a key: as written in YAML, or as its flag.
func (s *source) show(key string) string {
	if s.flags {
		return "--" + key
	}
	return key
}

// duplicate fails a key given twice in one mapping: YAML would silently
// keep the last.
func (s *source) duplicate(seen map[string]int, k *yaml.Node, field string) bool {
	if first, dup := seen[k.Value]; dup {
		s.fail(k.Line, field, "given twice (first at line %d)", first)
		return true
	}
	seen[k.Value] = k.Line
	return false
}

// exposed warns when path can be read by users other than its owner.
func (s *source) exposed(path, what string) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o044 != 0 {
		s.warnings = append(s.warnings, fmt.Sprintf("%s %s is readable by other users (mode %#o): chmod 600 it", what, path, fi.Mode().Perm()))
	}
}

func (s *source) fail(line int, field, format string, args ...any) {
	s.errs = append(s.errs, &fieldError{Where: s.where(line), Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (s *source) where(line int) string {
	if line == 0 {
		return s.file
	}
	return s.file + ":" + strconv.Itoa(line)
}

type rawValue struct {
	text string
	list []string
	line int
}

type rawLink map[string]rawValue

// loadConfig reads and validates a configuration file.
func loadConfig(path string) (*config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &source{file: path}
	cfg := &config{LogFormat: "text", LogLevel: slog.LevelInfo}
	defer func() { cfg.Warnings = s.warnings }()
	s.exposed(path, "configuration file")
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty configuration: it needs at least one link", path)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &fieldError{Where: s.where(root.Line), Field: "(top level)", Msg: "want a mapping of settings"}
	}
	var defaultStore rawValue
	var links []rawLink
	var linksLine int
	seenTop := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if s.duplicate(seenTop, k, k.Value) {
			continue
		}
		switch k.Value {
		case "http":
			cfg.HTTP = s.scalar(v, "http")
		case "http-allow-external":
			cfg.AllowExternal = s.boolean(v, "http-allow-external")
		case "http-token-file":
			cfg.HTTPTokenFile = s.scalar(v, "http-token-file")
		case "http-redact":
			cfg.HTTPRedact = s.list(v, "http-redact")
		case "changes":
			cfg.Changes = s.scalar(v, "changes")
		case "log-format":
			cfg.LogFormat = s.scalar(v, "log-format")
		case "log-level":
			cfg.LogLevel = s.level(v, "log-level")
		case "store":
			defaultStore = rawValue{text: s.scalar(v, "store"), line: v.Line}
		case "links":
			linksLine = k.Line
			links = s.links(v)
		default:
			s.fail(k.Line, k.Value, "unknown setting; want one of http, http-allow-external, http-token-file, http-redact, changes, log-format, log-level, store, links")
		}
	}
	if linksLine == 0 {
		s.fail(0, "links", "missing: the configuration needs at least one link")
	}
	seen := map[string]string{}
	for i, rl := range links {
		if _, ok := rl["store"]; !ok && defaultStore.text != "" {
			rl["store"] = defaultStore
		}
		spec := s.link(fmt.Sprintf("links[%d]", i), rl)
		if spec == nil {
			continue
		}
		if prev, dup := seen[spec.Name]; dup {
			s.fail(rl["name"].line, fmt.Sprintf("links[%d].name", i), "%q is already the name of the link at %s", spec.Name, prev)
			continue
		}
		seen[spec.Name] = spec.Source
		cfg.Links = append(cfg.Links, *spec)
	}
	s.common(cfg)
	if err := errors.Join(s.errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// common checks the settings that do not belong to a link.
func (s *source) common(cfg *config) {
	switch cfg.LogFormat {
	case "text", "json":
	default:
		s.fail(0, "log-format", "%q: want text or json", cfg.LogFormat)
	}
}

func (s *source) scalar(v *yaml.Node, field string) string {
	if v.Kind != yaml.ScalarNode {
		s.fail(v.Line, field, "want a single value")
		return ""
	}
	return v.Value
}

// list reads a list of names (or one name), never nil.
func (s *source) list(v *yaml.Node, field string) []string {
	out := []string{}
	switch v.Kind {
	case yaml.SequenceNode:
		for _, n := range v.Content {
			out = append(out, s.scalar(n, field))
		}
	case yaml.ScalarNode:
		if v.Value != "" {
			out = append(out, v.Value)
		}
	default:
		s.fail(v.Line, field, "want a list of attribute names")
	}
	return out
}

func (s *source) boolean(v *yaml.Node, field string) bool {
	b, err := strconv.ParseBool(s.scalar(v, field))
	if err != nil && v.Kind == yaml.ScalarNode {
		s.fail(v.Line, field, "%q: want true or false", v.Value)
	}
	return b
}

func (s *source) level(v *yaml.Node, field string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s.scalar(v, field))); err != nil && v.Kind == yaml.ScalarNode {
		s.fail(v.Line, field, "%q: want debug, info, warn or error", v.Value)
	}
	return l
}

// links reads the list of link mappings, keeping each value's text and line.
func (s *source) links(v *yaml.Node) []rawLink {
	if v.Kind != yaml.SequenceNode {
		s.fail(v.Line, "links", "want a list of links")
		return nil
	}
	if len(v.Content) == 0 {
		s.fail(v.Line, "links", "empty: the configuration needs at least one link")
	}
	var out []rawLink
	for i, n := range v.Content {
		field := fmt.Sprintf("links[%d]", i)
		if n.Kind != yaml.MappingNode {
			s.fail(n.Line, field, "want a mapping of link settings")
			continue
		}
		rl := rawLink{"": {line: n.Line}}
		seen := map[string]int{}
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, val := n.Content[j], n.Content[j+1]
			if s.duplicate(seen, k, field+"."+k.Value) {
				continue
			}
			if !slices.Contains(linkFields, k.Value) {
				s.fail(k.Line, field+"."+k.Value, "unknown setting; want one of %s", strings.Join(linkFields, ", "))
				continue
			}
			rv := rawValue{line: val.Line}
			switch {
			case val.Kind == yaml.SequenceNode && (k.Value == "attributes" || k.Value == "url"):
				for _, a := range val.Content {
					rv.list = append(rv.list, a.Value)
				}
			case val.Kind == yaml.ScalarNode:
				rv.text = val.Value
			default:
				s.fail(val.Line, field+"."+k.Value, "want a single value")
				continue
			}
			rl[k.Value] = rv
		}
		out = append(out, rl)
	}
	return out
}

// link turns one link's raw settings into a validated link, or nil. Its
// Fingerprint digests every setting as written and the secret it resolved
// to, so that SIGHUP can tell which links changed.
func (s *source) link(field string, rl rawLink) *mirror.LinkConfig {
	before := len(s.errs)
	urlInvalid := false
	at := func(k string) (rawValue, bool) { v, ok := rl[k]; return v, ok }
	str := func(k string) string { v, _ := at(k); return v.text }
	fail := func(k, format string, args ...any) {
		v, ok := at(k)
		if !ok {
			v = rl[""]
		}
		s.fail(v.line, field+"."+k, format, args...)
	}
	// dur reads a duration. One rule for every duration (and for
	// deletion-guard-floor): leave the key out for the default, write off
	// to turn off what can be turned off; 0 is refused, since it would read
	// as "off" for some and "default" for others.
	dur := func(k string, into *time.Duration) {
		v, ok := at(k)
		if !ok {
			return
		}
		if v.text == "off" {
			if !offable[k] {
				fail(k, "cannot be turned off; leave it out for the default (%s)", defaultOf(k))
			}
			*into = offValue[k]
			return
		}
		d, err := time.ParseDuration(v.text)
		switch {
		case err != nil || d < 0:
			fail(k, "%q: want a duration such as 30s or 2m", v.text)
		case d == 0:
			fail(k, "%q: %s", v.text, zeroRefused(k))
		default:
			*into = d
		}
	}
	boolean := func(k string) bool {
		v, ok := at(k)
		if !ok {
			return false
		}
		b, err := strconv.ParseBool(v.text)
		if err != nil {
			fail(k, "%q: want true or false", v.text)
		}
		return b
	}
	number := func(k string, into *float64) {
		if v, ok := at(k); ok {
			f, err := strconv.ParseFloat(v.text, 64)
			if err != nil {
				fail(k, "%q: want a number", v.text)
				return
			}
			*into = f
		}
	}

	spec := &mirror.LinkConfig{Name: str("name"), Source: s.where(rl[""].line), Machine: fsm.DefaultConfig()}
	if spec.Name == "" {
		fail("name", "missing: every link needs a name")
	} else if strings.ContainsAny(spec.Name, "/ \t") {
		fail("name", "%q: a name has no spaces or slashes", spec.Name)
	}
	field = fmt.Sprintf("%s (%s)", field, spec.Name)
	l := &spec.LDAP
	l.URL, l.BindDN, l.BaseDN, l.Filter = str("url"), str("bind-dn"), str("base"), str("filter")
	l.LogBase, l.LogFilter = str("log-base"), str("log-filter")
	if v, ok := at("url"); ok && len(v.list) > 0 { // several providers of one directory
		l.URL, l.URLs = "", v.list
	}
	l.StartTLS, l.SASLExternal = boolean("start-tls"), boolean("sasl-external")
	l.AllowCleartextPassword = boolean("allow-cleartext-password")
	if v, ok := at("attributes"); ok {
		l.Attributes = v.list
		if v.text != "" {
			l.Attributes = strings.Split(v.text, ",")
		}
	}
	for _, k := range []string{"url", "base"} {
		if _, ok := at(k); !ok {
			fail(k, "missing")
		}
	}
	urls := l.URLs
	if l.URL != "" {
		urls = []string{l.URL}
	}
	for _, raw := range urls {
		// Never echo it: the URL is in /status, /metrics and every log line.
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			fail("url", "holds a user (and perhaps a password) before the host: the URL is shown in /status, /metrics and the logs; give %s and %s or %s instead",
				s.show("bind-dn"), s.show("password-file"), s.show("password-env"))
			urlInvalid = true
			break
		}
	}
	if v, ok := at("server-name"); ok && !l.StartTLS {
		for _, raw := range urls {
			if u, err := url.Parse(raw); err == nil && u.Scheme == "ldap" && u.User == nil {
				s.fail(v.line, field+".server-name", "%q is never verified: %s is plain ldap:// without %s (use ldaps:// or %s)", v.text, raw, s.show("start-tls"), s.show("start-tls"))
				break
			}
		}
	}
	switch v := str("scope"); v {
	case "", "sub", "subtree":
		l.Scope = ldap.ScopeWholeSubtree
	case "one", "onelevel", "single":
		l.Scope = ldap.ScopeSingleLevel
	default:
		fail("scope", "%q: want sub or one", v)
	}
	secret := s.password(rl, field, fail)
	l.Password = secret
	s.tls(rl, l, fail)

	m := &spec.Machine
	if v, ok := at("mode"); ok && v.text == ldapadapter.ModeDirSync {
		// Active Directory: DirSync rounds, persisting between them.
		l.Mode, m.Mode = ldapadapter.ModeDirSync, replink.RefreshAndPersist
	} else if ok {
		mode, err := replink.ParseMode(v.text)
		if err != nil {
			fail("mode", "%q: want refreshAndPersist, refreshOnly or dirsync", v.text)
		}
		m.Mode = mode
	}
	dur("dirsync-poll", &l.DirSyncPoll)
	l.DirSyncObjectSecurity = boolean("dirsync-object-security")
	dur("refresh-interval", &m.RefreshInterval)
	dur("connect-timeout", &m.ConnectTimeout)
	dur("keepalive", &m.KeepaliveInterval)
	if v, ok := at("keepalive"); ok && v.text == "off" {
		m.KeepaliveTimeout = 0
	}
	dur("keepalive-timeout", &m.KeepaliveTimeout)
	dur("inactivity", &m.InactivityTimeout)
	dur("backoff-initial", &m.Backoff.Initial)
	dur("backoff-max", &m.Backoff.Max)
	number("backoff-multiplier", &m.Backoff.Multiplier)
	number("backoff-jitter", &m.Backoff.Jitter)
	if v, ok := at("max-retries"); ok {
		n, err := strconv.Atoi(v.text)
		if err != nil || n < 0 {
			fail("max-retries", "%q: want a whole number, 0 for no limit", v.text)
		}
		m.MaxRetries = n
	}
	dur("stop-timeout", &l.StopTimeout)
	dur("commit-interval", &l.CookieFlushInterval)
	l.Probe = str("probe")
	dur("refresh-stall", &l.RefreshStall)
	dur("tcp-keepalive", &l.TCPKeepAlive)
	dur("tcp-user-timeout", &l.TCPUserTimeout)
	whole := func(k string, into *int) {
		if v, ok := at(k); ok {
			n, err := strconv.Atoi(v.text)
			if err != nil || n <= 0 {
				fail(k, "%q: want a positive whole number", v.text)
				return
			}
			*into = n
		}
	}
	if v, ok := at("deletion-guard"); ok {
		share, err := parseShare(v.text)
		if err != nil {
			fail("deletion-guard", "%q: %v", v.text, err)
		}
		l.DeletionGuard.Share = share
	}
	if v, ok := at("deletion-guard-floor"); ok {
		n, err := strconv.Atoi(v.text)
		switch {
		case v.text == "off":
			l.DeletionGuard.Floor = -1 // none: the library's zero is its default
		case err != nil || n < 0:
			fail("deletion-guard-floor", "%q: want a whole number of entries, or off for none", v.text)
		case n == 0:
			fail("deletion-guard-floor", "%q: %s", v.text, zeroRefused("deletion-guard-floor"))
		default:
			l.DeletionGuard.Floor = n
		}
	}
	whole("max-message", &l.MaxMessage)
	whole("queue-bytes", &l.QueueBytes)
	whole("history", &m.HistorySize)
	spec.Store = str("store")
	if spec.Store == "" {
		fail("store", "missing: give the link a store file, or set store at the top level")
	}
	// The library's own checks, before anything connects, even after ours
	// failed: every error at once. Each names the key that sets the field
	// at fault, at its line; a key we already refused is not refused twice.
	failed := map[string]bool{}
	for _, e := range s.errs[before:] {
		if fe, ok := e.(*fieldError); ok {
			failed[fe.Field[strings.LastIndexByte(fe.Field, '.')+1:]] = true
		}
	}
	if urlInvalid {
		l.URL, l.URLs = "", nil // the secret it may hold stays out of any message
		failed["url"] = true
	}
	check := *l
	check.Handler = ldapadapter.NewMemoryStore()
	_, aerr := ldapadapter.New(check)
	for _, e := range libraryErrors(aerr, m.Validate()) {
		k := libraryKey(e, rl)
		if k == "" || failed[k] || (k == "url" && len(urls) == 0) {
			if k == "" {
				s.fail(rl[""].line, field, "%s", speakKeys(e.msg, s.show))
			}
			continue
		}
		msg := strings.TrimLeft(strings.TrimPrefix(e.msg, e.field), ": ")
		fail(k, "%s", speakKeys(msg, s.show))
	}
	if len(s.errs) > before {
		return nil
	}
	spec.Fingerprint = fingerprint(rl, secret)
	return spec
}

// password reads the bind password from a file or an environment variable.
// It never appears in an error: only where it was looked for.
func (s *source) password(rl rawLink, field string, fail func(k, format string, args ...any)) string {
	pf, hasFile := rl["password-file"]
	pe, hasEnv := rl["password-env"]
	if _, hasDN := rl["bind-dn"]; !hasDN && (hasFile || hasEnv) {
		k := "password-file"
		if !hasFile {
			k = "password-env"
		}
		fail(k, "without %s: the link would bind anonymously and the password go unused", s.show("bind-dn"))
	}
	switch {
	case hasFile && hasEnv:
		fail("password-env", "give password-file or password-env, not both")
	case hasFile:
		b, err := os.ReadFile(pf.text)
		if err != nil {
			fail("password-file", "%v", err)
			return ""
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			fail("password-file", "%s is empty", pf.text)
		}
		s.exposed(pf.text, "password file")
		return pw
	case hasEnv:
		pw := os.Getenv(pe.text)
		if pw == "" {
			fail("password-env", "environment variable %s is not set or empty", pe.text)
		}
		return pw
	}
	return ""
}

// tls builds the TLS settings from CA, server name and client certificate.
func (s *source) tls(rl rawLink, l *ldapadapter.Config, fail func(k, format string, args ...any)) {
	ca, hasCA := rl["ca-file"]
	name, hasName := rl["server-name"]
	_ = hasName
	cert, hasCert := rl["cert-file"]
	key, hasKey := rl["key-file"]
	if !hasCA && !hasName && !hasCert && !hasKey {
		return
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name.text}
	if hasCA {
		pem, err := os.ReadFile(ca.text)
		if err != nil {
			fail("ca-file", "%v", err)
			return
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			fail("ca-file", "%s holds no PEM certificate", ca.text)
			return
		}
	}
	if hasCert != hasKey {
		fail("cert-file", "cert-file and key-file go together")
		return
	}
	if hasCert {
		pair, err := tls.LoadX509KeyPair(cert.text, key.text)
		if err != nil {
			fail("cert-file", "%v", err)
			return
		}
		t.Certificates = []tls.Certificate{pair}
	}
	l.TLS = t // an empty ServerName is the URL's host, as without TLS settings
}

// fingerprint digests every setting of a link as written, the secret it
// resolved to, and the contents of its TLS files, so that a changed
// password file, or a CA, certificate or key rotated in place, is a
// changed link.
func fingerprint(rl rawLink, secret string) string {
	h := sha256.New()
	for _, k := range linkFields {
		if v, ok := rl[k]; ok {
			fmt.Fprintf(h, "%s=%q%q\n", k, v.text, v.list)
		}
	}
	h.Write([]byte(secret))
	for _, k := range []string{"ca-file", "cert-file", "key-file"} {
		if v, ok := rl[k]; ok {
			b, _ := os.ReadFile(v.text) // read by tls() a moment ago: an error is reported there
			sum := sha256.Sum256(b)
			fmt.Fprintf(h, "%s:%x\n", k, sum)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// parseShare reads a deletion guard's share of the copy: "20%", "0.2", or
// "off" (returned as -1, the library's off).
func parseShare(s string) (float64, error) {
	if s == "off" {
		return -1, nil
	}
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f <= 0 || f > 1 {
		return 0, errors.New("want a share of the copy such as 20% or 0.2 (at most 100%), or off")
	}
	return f, nil
}

// offable are the durations (and counts) that off turns off, with the
// library's value for off.
var offable = map[string]bool{
	"keepalive": true, "inactivity": true, "refresh-stall": true,
	"tcp-keepalive": true, "tcp-user-timeout": true, "deletion-guard": true, "deletion-guard-floor": true,
}

var offValue = map[string]time.Duration{
	"refresh-stall": -1, "tcp-keepalive": -1, "tcp-user-timeout": -1, // the library's zero is its default
}

func defaultOf(key string) string {
	for _, st := range linkSettings {
		if st.key == key {
			return st.def
		}
	}
	return ""
}

// zeroRefused says why 0 is not a value of key, and what to write instead.
func zeroRefused(key string) string {
	if offable[key] {
		return fmt.Sprintf("0 is refused: write off to turn it off, or leave it out for the default (%s)", defaultOf(key))
	}
	return fmt.Sprintf("0 is refused: it must be positive; leave it out for the default (%s)", defaultOf(key))
}

// libraryError is one refusal of ldapadapter.New or fsm.Config.Validate.
type libraryError struct{ field, msg string }

// libraryErrors flattens the library's joined errors into their fields.
func libraryErrors(errs ...error) []libraryError {
	var out []libraryError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case *ldapadapter.ConfigError:
			out = append(out, libraryError{e.Field, e.Msg})
		case *fsm.ConfigError:
			out = append(out, libraryError{e.Field, e.Field + ": " + e.Reason})
		default:
			out = append(out, libraryError{"", err.Error()})
		}
	}
	for _, err := range errs {
		walk(err)
	}
	return out
}

// libraryKey is the key that sets the field a library error names: the one
// given, when several set it (password-file, password-env).
func libraryKey(e libraryError, rl rawLink) string {
	if e.field == "Backoff" {
		for _, k := range []string{"initial", "multiplier", "jitter", "max"} {
			if strings.Contains(e.msg, ": "+k+" ") {
				return "backoff-" + k
			}
		}
	}
	first := ""
	for _, st := range linkSettings {
		if !slices.Contains(st.fields, e.field) {
			continue
		}
		if _, given := rl[st.key]; given {
			return st.key
		}
		if first == "" {
			first = st.key
		}
	}
	return first
}
