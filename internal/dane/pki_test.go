package dane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"time"

	"mxward/internal/dns"
)

// testNow is the clock of every verification in the tests; the certificates below are
// valid around it unless made expired on purpose.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// keyCert is a certificate with its private key.
type keyCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certSpec is what a test certificate should say.
type certSpec struct {
	cn       string
	dns      []string
	ca       bool
	maxPath  int  // path length constraint for a CA; meaningful with pathSet
	pathSet  bool // set a path length constraint (maxPath, possibly 0)
	expired  bool // validity ended before testNow
	clientEK bool // extended key usage clientAuth only
}

// pki is the hierarchy the tests use: an ECDSA root, an RSA intermediate under it, and
// leafs for every case, plus self-signed leafs for DANE-EE.
type pki struct {
	root, inter *keyCert

	leaf          *keyCert // mx.example.test, issued by inter
	leafExpired   *keyCert // mx.example.test, issued by inter, expired
	leafMisnamed  *keyCert // other.example.net, issued by inter
	leafWild      *keyCert // *.example.test, issued by inter
	leafCNOnly    *keyCert // CN mx.example.test, no SANs, issued by inter
	leafCNAndSAN  *keyCert // CN mx.example.test, SAN other.example.net, issued by inter
	leafClientEKU *keyCert // mx.example.test, clientAuth only, issued by inter

	// A root that allows no intermediate (pathlen 0) with an intermediate and a leaf
	// under it: the chain violates the root's constraint.
	strictRoot, strictInter, strictLeaf *keyCert

	self     *keyCert // self-signed, expired, misnamed: DANE-EE needs none of it
	selfRSA  *keyCert // self-signed RSA leaf
	selfNext *keyCert // the next key of a rollover
}

var testPKI = sync.OnceValue(func() *pki {
	var serial int64
	p := &pki{}
	mk := func(s certSpec, key crypto.Signer, parent *keyCert) *keyCert {
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: s.cn, Organization: []string{"mxward test"}},
			DNSNames:     s.dns,
			NotBefore:    testNow.Add(-30 * 24 * time.Hour),
			NotAfter:     testNow.Add(365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if s.expired {
			tmpl.NotBefore = testNow.Add(-400 * 24 * time.Hour)
			tmpl.NotAfter = testNow.Add(-24 * time.Hour)
		}
		if s.clientEK {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		if s.ca {
			tmpl.IsCA = true
			tmpl.BasicConstraintsValid = true
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
			tmpl.ExtKeyUsage = nil
			if s.pathSet {
				tmpl.MaxPathLen = s.maxPath
				tmpl.MaxPathLenZero = s.maxPath == 0
			} else {
				tmpl.MaxPathLen = -1
			}
		}
		issuer, signer := tmpl, key
		if parent != nil {
			issuer, signer = parent.cert, parent.key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
		if err != nil {
			panic(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		return &keyCert{cert: c, key: key}
	}
	ec := func() crypto.Signer {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	rsaKey2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}

	p.root = mk(certSpec{cn: "mxward test root", ca: true}, ec(), nil)
	p.inter = mk(certSpec{cn: "mxward test intermediate", ca: true}, rsaKey, p.root)
	p.leaf = mk(certSpec{cn: "mx.example.test", dns: []string{"mx.example.test"}}, ec(), p.inter)
	p.leafExpired = mk(certSpec{cn: "mx.example.test", dns: []string{"mx.example.test"}, expired: true}, ec(), p.inter)
	p.leafMisnamed = mk(certSpec{cn: "other.example.net", dns: []string{"other.example.net"}}, ec(), p.inter)
	p.leafWild = mk(certSpec{cn: "wildcard", dns: []string{"*.example.test"}}, ec(), p.inter)
	p.leafCNOnly = mk(certSpec{cn: "mx.example.test"}, ec(), p.inter)
	p.leafCNAndSAN = mk(certSpec{cn: "mx.example.test", dns: []string{"other.example.net"}}, ec(), p.inter)
	p.leafClientEKU = mk(certSpec{cn: "mx.example.test", dns: []string{"mx.example.test"}, clientEK: true}, ec(), p.inter)

	p.strictRoot = mk(certSpec{cn: "mxward strict root", ca: true, pathSet: true, maxPath: 0}, ec(), nil)
	p.strictInter = mk(certSpec{cn: "mxward strict intermediate", ca: true}, ec(), p.strictRoot)
	p.strictLeaf = mk(certSpec{cn: "mx.example.test", dns: []string{"mx.example.test"}}, ec(), p.strictInter)

	p.self = mk(certSpec{cn: "localhost", dns: []string{"localhost.invalid"}, expired: true}, ec(), nil)
	p.selfRSA = mk(certSpec{cn: "rsa.example.test", dns: []string{"rsa.example.test"}}, rsaKey2, nil)
	p.selfNext = mk(certSpec{cn: "next.example.test", dns: []string{"next.example.test"}}, ec(), nil)
	return p
})

// rec builds the TLSA record of usage u, selector s and matching type m for c.
func rec(u, s, m uint8, c *x509.Certificate) dns.TLSA {
	content := c.Raw
	if s == SelectorSPKI {
		content = c.RawSubjectPublicKeyInfo
	}
	var data []byte
	switch m {
	case MatchFull:
		data = append([]byte(nil), content...)
	case MatchSHA256:
		d := sha256.Sum256(content)
		data = d[:]
	case MatchSHA512:
		d := sha512.Sum512(content)
		data = d[:]
	default:
		data = make([]byte, 32)
	}
	return dns.TLSA{Usage: u, Selector: s, MatchingType: m, Data: data}
}

// chain returns the certificates of kcs, in order.
func chain(kcs ...*keyCert) []*x509.Certificate {
	out := make([]*x509.Certificate, len(kcs))
	for i, kc := range kcs {
		out[i] = kc.cert
	}
	return out
}
