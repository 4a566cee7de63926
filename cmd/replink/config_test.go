package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writePair writes a fresh self-signed certificate and its key.
func writePair(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "replink test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
}

// A CA, certificate or key replaced at the same path is a changed link:
// SIGHUP reconnects it with the new files. The same files are no change.
func TestRotatedTLSFilesChangeTheLink(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	cert, key := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	writePair(t, ca, caKey)
	writePair(t, cert, key)
	cfgPath := filepath.Join(dir, "replink.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(`store: `+filepath.Join(dir, "r.db")+`
links:
  - name: a
    url: ldaps://127.0.0.1:636
    base: dc=example,dc=com
    ca-file: `+ca+`
    cert-file: `+cert+`
    key-file: `+key+`
    sasl-external: true
`), 0o600))
	fingerprint := func() string {
		cfg, err := loadConfig(cfgPath)
		require.NoError(t, err)
		return cfg.Links[0].Fingerprint
	}
	first := fingerprint()
	require.Equal(t, first, fingerprint(), "nothing changed")
	writePair(t, ca, caKey) // a new CA at the same path
	second := fingerprint()
	require.NotEqual(t, first, second, "the CA was rotated")
	writePair(t, cert, key) // a new client pair at the same paths
	require.NotEqual(t, second, fingerprint(), "the client certificate was rotated")
}
