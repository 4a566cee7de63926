package slapdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TLS is what a test needs to reach a slapd started WithTLS: the CA that
// signed its certificate, a client certificate whose subject is the
// replicator's DN (for SASL EXTERNAL), and the ldaps:// port.
type TLS struct {
	Roots      *x509.CertPool
	ClientCert tls.Certificate
	Port       int
	files      [3]string // CA, server certificate, server key
}

// WithTLS is a Start option: slapd gets a certificate for 127.0.0.1 signed
// by a CA made for this test, accepts StartTLS on its ldap:// port and
// listens for ldaps:// on a second port; the test gets a client certificate
// that slapd's SASL EXTERNAL takes for the replicator.
func WithTLS(s *Server) {
	s.t.Helper()
	t, err := makeTLS(s.Dir)
	if err != nil {
		s.t.Fatal(err)
	}
	t.Port = FreePort(s.t)
	s.TLS = t
}

// LDAPSURL is the ldaps:// address of a server started WithTLS.
func (s *Server) LDAPSURL() string {
	return "ldaps://" + net.JoinHostPort(s.Host, strconv.Itoa(s.TLS.Port))
}

func (t *TLS) conf() string {
	return fmt.Sprintf("TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\nTLSVerifyClient allow\n",
		t.files[0], t.files[1], t.files[2])
}

func makeTLS(dir string) (*TLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "replink test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ = x509.ParseCertificate(caDER)
	issue := func(serial int64, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		return der, key, err
	}
	srvDER, srvKey, err := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	// X.509 names run from the root down; slapd reads this subject as
	// cn=replicator,dc=example,dc=com, the replicator's DN.
	dc := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	subject, err := asn1.Marshal(pkix.RDNSequence{
		{{Type: dc, Value: "com"}}, {{Type: dc, Value: "example"}},
		{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "replicator"}},
	})
	if err != nil {
		return nil, err
	}
	cliDER, cliKey, err := issue(3, &x509.Certificate{
		RawSubject:  subject,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	t := &TLS{Roots: x509.NewCertPool()}
	t.Roots.AddCert(ca)
	t.ClientCert = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	srvKeyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return nil, err
	}
	for i, f := range []struct {
		name, typ string
		der       []byte
	}{
		{"ca.pem", "CERTIFICATE", caDER},
		{"server.pem", "CERTIFICATE", srvDER},
		{"server.key", "PRIVATE KEY", srvKeyDER},
	} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			return nil, err
		}
		t.files[i] = path
	}
	return t, nil
}
