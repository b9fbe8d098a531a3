package labca

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c, err := ca.Issue([]string{"mx.example.test", "mta-sts.example.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.TLS.Leaf
	if leaf == nil || len(c.TLS.Certificate) != 2 {
		t.Fatalf("chain of %d certificates, leaf %v; want leaf and CA", len(c.TLS.Certificate), leaf)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, tc := range []struct {
		name  string
		roots *x509.CertPool
		at    time.Time
		ok    bool
	}{
		{"mx.example.test", pool, now, true},
		{"mta-sts.example.test", pool, now, true},
		{"other.example.test", pool, now, false},
		{"mx.example.test", x509.NewCertPool(), now, false},
		{"mx.example.test", pool, now.Add(2 * time.Hour), false},
	} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: tc.roots, CurrentTime: tc.at,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tc.ok {
			t.Errorf("verify %s at %v: %v, want ok %v", tc.name, tc.at, err, tc.ok)
		}
	}
}

func TestNewCertSelfSigned(t *testing.T) {
	c, err := NewCert("mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TLS.Leaf.Verify(x509.VerifyOptions{DNSName: "mx.example.test", Roots: c.Pool()}); err != nil {
		t.Errorf("not valid for its own name against itself: %v", err)
	}
	if _, err := c.TLS.Leaf.Verify(x509.VerifyOptions{DNSName: "mx.example.test", Roots: x509.NewCertPool()}); err == nil {
		t.Error("a self-signed certificate verified against an empty pool")
	}
}
