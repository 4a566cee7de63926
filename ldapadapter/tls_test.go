package ldapadapter_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink"
	"github.com/replink/replink/internal/realtarget"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
)

// TestTLSAgainstSlapd: ldaps and StartTLS against a slapd with a
// certificate from a CA made for the test; SASL EXTERNAL with a client
// certificate; verification on by default, and a provider we cannot verify is
// a refusal that waits for an admin, not a retry loop.
func TestTLSAgainstSlapd(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	srv := slapdtest.Start(t, slapdtest.WithTLS)
	require.NoError(t, srv.Write(5))
	trusted := &tls.Config{RootCAs: srv.TLS.Roots}
	withClientCert := &tls.Config{RootCAs: srv.TLS.Roots, Certificates: []tls.Certificate{srv.TLS.ClientCert}}
	wrongName := &tls.Config{RootCAs: srv.TLS.Roots, ServerName: "provider.example.com"}

	for _, tc := range []struct {
		name     string
		edit     func(*ldapadapter.Config)
		want     replink.State
		untrusts any // for errors.As on the cause of a refusal
	}{
		{"ldaps", func(c *ldapadapter.Config) { c.URL, c.TLS = srv.LDAPSURL(), trusted }, replink.Persisting, nil},
		{"StartTLS", func(c *ldapadapter.Config) { c.StartTLS, c.TLS = true, trusted }, replink.Persisting, nil},
		{"SASL EXTERNAL", func(c *ldapadapter.Config) {
			c.URL, c.TLS, c.SASLExternal, c.BindDN, c.Password = srv.LDAPSURL(), withClientCert, true, "", ""
		}, replink.Persisting, nil},
		{"system roots", func(c *ldapadapter.Config) { c.URL = srv.LDAPSURL() }, replink.Failed, &x509.UnknownAuthorityError{}},
		{"StartTLS, system roots", func(c *ldapadapter.Config) { c.StartTLS = true }, replink.Failed, &x509.UnknownAuthorityError{}},
		{"wrong server name", func(c *ldapadapter.Config) { c.URL, c.TLS = srv.LDAPSURL(), wrongName }, replink.Failed, &x509.HostnameError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := ldapadapter.NewMemoryStore()
			cfg := linkConfig(tc.name, srv.URL(), store, nil)
			tc.edit(&cfg.LDAP)
			l, err := ldapadapter.NewLink(cfg)
			require.NoError(t, err)
			defer l.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			require.NoError(t, l.Start(ctx))
			got, err := l.WaitFor(ctx, replink.Persisting, replink.Failed)
			require.NoError(t, err)
			h := l.History()
			last := h[len(h)-1]
			require.Equal(t, tc.want, got, "last transition %v", last)
			if tc.want == replink.Persisting {
				require.Eventually(t, func() bool {
					want, err := srv.Snapshot(ctx, slapdtest.BaseDN)
					return err == nil && realtarget.DiffTrees(want, store.Snapshot()) == nil
				}, 5*time.Second, 20*time.Millisecond)
				return
			}
			require.Equal(t, replink.ConnectRefused, last.Event)
			require.ErrorIs(t, last.Cause, ldapadapter.ErrUntrusted)
			var ve *tls.CertificateVerificationError
			require.ErrorAs(t, last.Cause, &ve)
			require.ErrorAs(t, last.Cause, tc.untrusts)
		})
	}
}
