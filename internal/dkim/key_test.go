package dkim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Keys load from the PEM forms operators have: PKCS#8 (RSA and Ed25519, what
// MarshalPrivateKey and `openssl genpkey` write) and PKCS#1 (what `openssl genrsa` and
// opendkim-genkey write). Other key types, keys too small to be accepted by verifiers
// and files without a key are refused.
func TestParsePrivateKey(t *testing.T) {
	rk := testRSAKey(t)
	ek := rfc8463Key(t)
	p8rsa, _ := x509.MarshalPKCS8PrivateKey(rk)
	p8ed, _ := x509.MarshalPKCS8PrivateKey(ek)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8ec, _ := x509.MarshalPKCS8PrivateKey(ec)
	cert := pemBlock("CERTIFICATE", []byte("not parsed"))
	for _, tc := range []struct {
		name string
		pem  []byte
		alg  Algorithm // "" for an error
	}{
		{"pkcs8 rsa", pemBlock("PRIVATE KEY", p8rsa), RSASHA256},
		{"pkcs1 rsa", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), RSASHA256},
		{"pkcs8 ed25519", pemBlock("PRIVATE KEY", p8ed), Ed25519SHA256},
		{"certificate first", append(cert, pemBlock("PRIVATE KEY", p8ed)...), Ed25519SHA256},
		{"ecdsa", pemBlock("PRIVATE KEY", p8ec), ""},
		{"garbage der", pemBlock("PRIVATE KEY", []byte{1, 2, 3}), ""},
		{"no pem", []byte("hello"), ""},
		{"certificate only", cert, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParsePrivateKey(tc.pem)
			if tc.alg == "" {
				if err == nil {
					t.Errorf("accepted %T", k)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if alg, _ := KeyAlgorithm(k.Public()); alg != tc.alg {
				t.Errorf("algorithm %s, want %s", alg, tc.alg)
			}
		})
	}
}

// An RSA key below 1024 bits is refused wherever it appears (RFC 8301 §3.2). Go
// refuses to generate one, so the test builds the public half by hand.
func TestSmallRSAKeyRefused(t *testing.T) {
	small := &rsa.PublicKey{N: smallModulus(), E: 65537}
	if _, err := KeyAlgorithm(small); err == nil || !strings.Contains(err.Error(), "1024") {
		t.Errorf("KeyAlgorithm: %v", err)
	}
	if _, err := KeyRecord(small); err == nil {
		t.Error("KeyRecord accepted a 768-bit key")
	}
}

// Generated keys have the sizes the RFCs ask for, round-trip through PEM and give key
// records that parse back to the same public key.
func TestGenerateKey(t *testing.T) {
	for _, alg := range []Algorithm{Ed25519SHA256, RSASHA256} {
		t.Run(string(alg), func(t *testing.T) {
			k, err := GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() != GenerateRSABits {
				t.Errorf("RSA key of %d bits", rk.N.BitLen())
			}
			pemData, err := MarshalPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivateKey(pemData)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := KeyRecord(back.Public())
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseKeyRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			type equaler interface{ Equal(crypto.PublicKey) bool }
			if !k.Public().(equaler).Equal(parsed.PublicKey) {
				t.Error("key record does not hold the generated public key")
			}
		})
	}
	if _, err := GenerateKey("rsa-sha1"); err == nil {
		t.Error("generated a key for rsa-sha1")
	}
}

// smallModulus returns an odd 768-bit number: enough to stand for a short RSA key,
// which is refused before any arithmetic.
func smallModulus() *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), 767)
	return n.Add(n, big.NewInt(1))
}
