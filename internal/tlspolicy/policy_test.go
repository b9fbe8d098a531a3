package tlspolicy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"mxward/internal/dane"
	"mxward/internal/smtpclient"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

type pki struct {
	root *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &pki{root, key, pool}
}

// leaf issues a certificate for names; selfSigned ignores the CA; expired dates it in the past.
func (p *pki) leaf(t *testing.T, names []string, selfSigned, expired bool) tls.ConnectionState {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nb, na := now.Add(-time.Hour), now.Add(30*24*time.Hour)
	if expired {
		nb, na = now.Add(-60*24*time.Hour), now.Add(-24*time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: nb, NotAfter: na, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	parent, signer := p.root, p.key
	if selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		err  string
	}{
		{"may", Policy{Level: LevelMay}, ""},
		{"SECURE match=.example.com:example.net", Policy{Level: LevelSecure, Match: []string{".example.com", "example.net"}}, ""},
		{"verify, match=hostname servername=nexthop", Policy{Level: LevelVerify, Match: []string{"hostname"}, ServerName: "nexthop"}, ""},
		{"fingerprint match=" + strings.Repeat("ab", 32) + "|" + strings.Repeat("AB:", 31) + "AB",
			Policy{Level: LevelFingerprint, Match: []string{strings.Repeat("ab", 32), strings.Repeat("ab", 32)}}, ""},
		{"", Policy{}, "empty"},
		{"maybe", Policy{}, "unknown security level"},
		{"encrypt match=x", Policy{}, "does not apply"},
		{"fingerprint", Policy{}, "needs match"},
		{"fingerprint match=abcd", Policy{}, "not a SHA-256"},
		{"secure match=", Policy{}, "want name=value"},
		{"secure ciphers=high", Policy{}, "unknown attribute"},
		{"secure match=a::b", Policy{}, "empty match"},
	}
	for _, tt := range tests {
		got, err := ParsePolicy(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePolicy(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.Level != tt.want.Level || strings.Join(got.Match, ",") != strings.Join(tt.want.Match, ",") || got.ServerName != tt.want.ServerName {
			t.Errorf("ParsePolicy(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestTableLookup(t *testing.T) {
	tab := Table{"example.com": {Level: LevelSecure}, ".example.com": {Level: LevelEncrypt}, ".org": {Level: LevelNone}}
	tests := []struct{ domain, key string }{
		{"example.com", "example.com"}, {"EXAMPLE.com.", "example.com"}, {"mx.example.com", ".example.com"},
		{"a.b.example.com", ".example.com"}, {"x.org", ".org"}, {"example.net", ""},
	}
	for _, tt := range tests {
		_, key, ok := tab.Lookup(tt.domain)
		if key != tt.key || ok != (tt.key != "") {
			t.Errorf("Lookup(%q) = %q %v, want %q", tt.domain, key, ok, tt.key)
		}
	}
}

// TestDecide is the table of levels (§9.1): what each requires and how the peer must be
// authenticated; each row fails if its rule is broken.
func TestDecide(t *testing.T) {
	p := newPKI(t)
	good := p.leaf(t, []string{"mx1.example.com"}, false, false)
	wrongName := p.leaf(t, []string{"mx.attacker.test"}, false, false)
	selfSigned := p.leaf(t, []string{"mx1.example.com"}, true, false)
	expired := p.leaf(t, []string{"mx1.example.com"}, false, true)
	nexthopCert := p.leaf(t, []string{"example.com"}, false, false)
	certSum := sha256.Sum256(selfSigned.PeerCertificates[0].Raw)
	keySum := sha256.Sum256(selfSigned.PeerCertificates[0].RawSubjectPublicKeyInfo)

	type check struct {
		cs   tls.ConnectionState
		auth string // "" means verification must fail
	}
	tests := []struct {
		name    string
		table   Table
		def     Level
		mode    smtpclient.TLSMode
		source  Source
		sni     string
		deferOK bool
		checks  []check
	}{
		{"default is opportunistic, any certificate", nil, "", smtpclient.TLSOpportunistic, SourceOpportunistic, "", false, nil},
		{"global none", nil, LevelNone, smtpclient.TLSDisabled, SourceLocal, "", false, nil},
		{"encrypt accepts self-signed", Table{"example.com": {Level: LevelEncrypt}}, "", smtpclient.TLSRequired, SourceLocal, "", false, nil},
		{"verify: chain and MX name", Table{"example.com": {Level: LevelVerify}}, "", smtpclient.TLSRequired, SourceLocal, "mx1.example.com", false,
			[]check{{good, "webpki"}, {wrongName, ""}, {selfSigned, ""}, {expired, ""}, {nexthopCert, ""}}},
		{"secure: next hop names, not the MX name from DNS", Table{"example.com": {Level: LevelSecure}}, "", smtpclient.TLSRequired, SourceLocal, "mx1.example.com", false,
			[]check{{good, "webpki"}, {nexthopCert, "webpki"}, {wrongName, ""}, {selfSigned, ""}, {expired, ""}}},
		{"secure with explicit match", Table{"example.com": {Level: LevelSecure, Match: []string{"mx.attacker.test"}}}, "", smtpclient.TLSRequired, SourceLocal, "mx1.example.com", false,
			[]check{{wrongName, "webpki"}, {good, ""}}},
		{"fingerprint of certificate", Table{"example.com": {Level: LevelFingerprint, Match: []string{hex.EncodeToString(certSum[:])}}}, "", smtpclient.TLSRequired, SourceLocal, "", false,
			[]check{{selfSigned, "fingerprint"}, {good, ""}}},
		{"fingerprint of public key", Table{"example.com": {Level: LevelFingerprint, Match: []string{hex.EncodeToString(keySum[:])}}}, "", smtpclient.TLSRequired, SourceLocal, "", false,
			[]check{{selfSigned, "fingerprint"}, {expired, ""}}},
		{"parent-domain policy applies", Table{".com": {Level: LevelEncrypt}}, "", smtpclient.TLSRequired, SourceLocal, "", false, nil},
		{"dane without a TLSA lookup is may", Table{"example.com": {Level: LevelDANE}}, "", smtpclient.TLSOpportunistic, SourceLocal, "", false, nil},
		{"dane-only defers", Table{"example.com": {Level: LevelDANEOnly}}, "", smtpclient.TLSRequired, SourceLocal, "", true, nil},
		{"servername attribute", Table{"example.com": {Level: LevelEncrypt, ServerName: "nexthop"}}, "", smtpclient.TLSRequired, SourceLocal, "example.com", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{NextHop: "example.com", MXHost: "mx1.example.com", Default: tt.def, Table: tt.table, Roots: p.pool, Now: func() time.Time { return now }})
			if d.Security.Mode != tt.mode || d.Source != tt.source || d.Security.ServerName != tt.sni || (d.Defer != nil) != tt.deferOK {
				t.Fatalf("decision %+v (defer %v); want mode %v source %s sni %q defer %v", d, d.Defer, tt.mode, tt.source, tt.sni, tt.deferOK)
			}
			if d.Reason == "" {
				t.Error("decision without a reason")
			}
			if tt.mode == smtpclient.TLSOpportunistic || tt.name == "encrypt accepts self-signed" {
				if d.Security.Verify != nil {
					t.Error("opportunistic/encrypt must accept any certificate (Verify nil)")
				}
			}
			for i, c := range tt.checks {
				auth, err := d.Security.Verify(c.cs)
				if c.auth == "" {
					if err == nil || !errors.Is(err, ErrVerify) {
						t.Errorf("check %d: accepted (%s), want ErrVerify", i, auth)
					}
				} else if err != nil || auth != c.auth {
					t.Errorf("check %d: %q, %v; want %q", i, auth, err, c.auth)
				}
			}
		})
	}
}

// A literal next hop has no MX name: verify has nothing to match and defers rather than
// pretending.
func TestDecideLiteral(t *testing.T) {
	d := Decide(Input{NextHop: "[192.0.2.1]", Literal: true, Table: Table{"[192.0.2.1]": {Level: LevelVerify}}})
	if d.Defer == nil {
		t.Fatalf("verify on a literal: %+v", d)
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"may", "secure match=.a.b:c", "fingerprint match=" + strings.Repeat("0", 64), "verify servername=hostname", "dane audit", "dane-only,audit"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			return
		}
		if !validLevel(p.Level) {
			t.Fatalf("invalid level accepted: %q", p.Level)
		}
		d := Decide(Input{NextHop: "example.com", MXHost: "mx.example.com", Table: Table{"example.com": p},
			DANE: func() dane.Host { return dane.Host{Outcome: dane.Unreachable, Reason: "lookup failed"} }})
		if d.Security.Mode != smtpclient.TLSRequired && d.Defer != nil {
			t.Fatalf("%q: a deferral that would allow plaintext: %+v", s, d)
		}
	})
}
