package main

import (
	"fmt"
	"regexp"
	"strings"
)

// setting is one setting of a link: its YAML key (and one-link flag), the
// library field it sets (to name the key when the library refuses a value),
// its default and what it means. The flag help, the error messages and the
// table in docs/daemon.md all come from linkSettings (a test holds the docs
// to it), so they cannot disagree.
type setting struct {
	key     string
	fields  []string // ldapadapter.Config or fsm.Config fields it sets
	def     string   // "" when there is none
	meaning string
}

var linkSettings = []setting{
	{"name", nil, "", "the link's name, no spaces or slashes (required in the file; default for the flags: default)"},
	{"url", []string{"URL", "URLs"}, "", "ldap://host:port or ldaps://host:port; a list (or the flag repeated) names the replicas of one directory, tried in turn"},
	{"start-tls", []string{"StartTLS"}, "false", "upgrade an ldap:// connection with StartTLS before binding"},
	{"ca-file", nil, "the system's roots", "PEM file of the CAs to trust"},
	{"server-name", nil, "the URL's host", "name to verify in the provider's certificate (needs ldaps:// or start-tls)"},
	{"cert-file", nil, "", "client certificate, PEM (with key-file)"},
	{"key-file", nil, "", "client certificate's key, PEM (with cert-file)"},
	{"sasl-external", []string{"SASLExternal"}, "false", "bind with the client certificate (SASL EXTERNAL)"},
	{"bind-dn", []string{"BindDN"}, "anonymous", "DN of a simple bind (needs password-file or password-env)"},
	{"password-file", []string{"Password"}, "", "file holding the bind password (first line)"},
	{"password-env", []string{"Password"}, "", "environment variable holding the bind password"},
	{"allow-cleartext-password", []string{"AllowCleartextPassword"}, "false", "allow a password over ldap:// without start-tls to a host other than loopback"},
	{"base", []string{"BaseDN"}, "", "base DN of the replicated subtree (required)"},
	{"scope", []string{"Scope"}, "sub", "sub or one"},
	{"filter", []string{"Filter"}, "(objectClass=*)", "LDAP filter of the entries replicated"},
	{"attributes", []string{"Attributes"}, "all user attributes", "attributes replicated (a list, or comma-separated)"},
	{"log-base", []string{"LogBase"}, "", "delta-syncrepl: follow the provider's accesslog database at this DN (cn=accesslog), applying each write as it was made; falls back to a refresh when the log cannot be followed"},
	{"log-filter", []string{"LogFilter"}, "", "delta-syncrepl: a filter the log records must also match"},
	{"mode", []string{"Mode"}, "refreshAndPersist", "refreshAndPersist or refreshOnly (RFC 4533), or dirsync (Active Directory's DirSync, docs/providers.md)"},
	{"dirsync-poll", []string{"DirSyncPoll"}, "30s", "dirsync: run a round this often even without a change notification (Samba notifies no deletion: this bounds how late one arrives)"},
	{"dirsync-object-security", []string{"DirSyncObjectSecurity"}, "false", "dirsync: return only what the bind identity may read, instead of needing the \"Replicating Directory Changes\" right"},
	{"refresh-interval", []string{"RefreshInterval"}, "1m", "refreshOnly: the wait between refreshes"},
	{"connect-timeout", []string{"ConnectTimeout"}, "10s", "bound on dial, TLS and bind together"},
	{"keepalive", []string{"KeepaliveInterval"}, "30s", "probe after this much silence; off turns keepalive off"},
	{"keepalive-timeout", []string{"KeepaliveTimeout"}, "10s", "how long a probe may go unanswered: a silent provider is detected within keepalive + keepalive-timeout"},
	{"inactivity", []string{"InactivityTimeout"}, "off", "drop a connection silent this long (for keepalive off)"},
	{"backoff-initial", []string{"Backoff"}, "1s", "first reconnection delay"},
	{"backoff-max", nil, "120s", "longest reconnection delay"},
	{"backoff-multiplier", nil, "1.6", "growth of the delay per attempt, at least 1"},
	{"backoff-jitter", nil, "0.2", "random share of the delay, in [0, 1)"},
	{"max-retries", []string{"MaxRetries"}, "0", "failed connection attempts in a row before the link fails for good; 0: retry for ever"},
	{"stop-timeout", []string{"StopTimeout"}, "3s", "bound on stopping this link, whatever the provider does"},
	{"refresh-stall", []string{"RefreshStall"}, "5m", "a refresh silent this long fails and retries; off to disable"},
	{"commit-interval", []string{"CookieFlushInterval"}, "1s", "how often the cookie (and the data it covers) is committed while changes flow"},
	{"probe", []string{"Probe"}, "whoami", "keepalive request: whoami, or rootdse for providers without WhoAmI"},
	{"tcp-keepalive", []string{"TCPKeepAlive"}, "15s", "kernel keepalive under the LDAP one; off to disable"},
	{"tcp-user-timeout", []string{"TCPUserTimeout"}, "30s", "kernel gives up on unacknowledged data after this; off to disable"},
	{"deletion-guard", []string{"DeletionGuard.Share"}, "20%", "share of the copy a refresh may delete before it is held for approval; off to disable"},
	{"deletion-guard-floor", []string{"DeletionGuard.Floor"}, "100", "deletions a refresh may always make, whatever the share; off for none"},
	{"max-message", []string{"MaxMessage"}, "16777216", "largest inbound LDAP message, bytes"},
	{"queue-bytes", []string{"QueueBytes"}, "4194304", "what the reader may buffer ahead of the store, bytes"},
	{"history", []string{"HistorySize"}, "32", "transitions kept for /status"},
	{"store", nil, "the top-level store", "bbolt file of this link's copy"},
}

// linkFields are the keys of linkSettings, in the order the docs list them.
var linkFields = func() []string {
	out := make([]string, len(linkSettings))
	for i, s := range linkSettings {
		out[i] = s.key
	}
	return out
}()

// help is the setting's flag help: its meaning and default.
func (s setting) help() string {
	if s.def == "" {
		return s.meaning
	}
	return fmt.Sprintf("%s (default %s)", s.meaning, s.def)
}

// keyOf is the key that sets a library field ("KeepaliveTimeout" →
// "keepalive-timeout"), or "" for none.
func keyOf(field string) string {
	for _, s := range linkSettings {
		for _, f := range s.fields {
			if f == field {
				return s.key
			}
		}
	}
	return ""
}

var goFieldName = regexp.MustCompile(`\b[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)?\b`)

// speakKeys rewrites the library's field names in msg as the keys that set
// them, each shown by show (a YAML key as is, a flag as --key).
func speakKeys(msg string, show func(key string) string) string {
	return goFieldName.ReplaceAllStringFunc(msg, func(w string) string {
		if k := keyOf(w); k != "" {
			return show(k)
		}
		return w
	})
}

// settingsTable is the Markdown table of linkSettings that docs/daemon.md
// carries.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("| key | default | meaning |\n|---|---|---|\n")
	for _, s := range linkSettings {
		def := s.def
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.key, def, s.meaning)
	}
	return b.String()
}
