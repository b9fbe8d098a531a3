package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

const (
	// MinRSABits is the smallest RSA key mxward signs with or accepts in a signature:
	// RFC 8301 §3.2 says verifiers must not consider shorter keys valid.
	MinRSABits = 1024
	// GenerateRSABits is the size of generated RSA keys, the size RFC 8301 §3.2 says
	// signers should use.
	GenerateRSABits = 2048
)

// KeyAlgorithm returns the algorithm that key signs with, and an error for a key
// type DKIM does not define or an RSA key shorter than MinRSABits.
func KeyAlgorithm(key crypto.PublicKey) (Algorithm, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("RSA key of %d bits is shorter than %d (RFC 8301 §3.2)", k.N.BitLen(), MinRSABits)
		}
		return RSASHA256, nil
	case ed25519.PublicKey:
		return Ed25519SHA256, nil
	case *rsa.PrivateKey:
		return KeyAlgorithm(&k.PublicKey)
	case ed25519.PrivateKey:
		return Ed25519SHA256, nil
	}
	return "", fmt.Errorf("unsupported key type %T (DKIM keys are RSA or Ed25519)", key)
}

// ParsePrivateKey parses a PEM private key: PKCS#8 ("PRIVATE KEY", RSA or Ed25519) or
// PKCS#1 ("RSA PRIVATE KEY"). The first PEM block that holds a private key is used;
// other blocks (a certificate, parameters) are skipped.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key (PKCS#8 \"PRIVATE KEY\" or PKCS#1 \"RSA PRIVATE KEY\") found")
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		if _, err := KeyAlgorithm(signer.Public()); err != nil {
			return nil, err
		}
		return signer, nil
	}
}

// GenerateKey makes a new key for alg: Ed25519, or RSA of GenerateRSABits bits.
func GenerateKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case Ed25519SHA256:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case RSASHA256:
		return rsa.GenerateKey(rand.Reader, GenerateRSABits)
	}
	return nil, fmt.Errorf("unknown algorithm %q", alg)
}

// MarshalPrivateKey returns key as a PKCS#8 PEM block, the form ParsePrivateKey reads
// and OpenSSL and other DKIM software understand.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// KeyRecord returns the text of the key record for pub (RFC 6376 §3.6.1):
// "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>" for RSA, the form every verifier
// accepts, or "v=DKIM1; k=ed25519; p=<32-byte key>" for Ed25519 (RFC 8463 §4).
func KeyRecord(pub crypto.PublicKey) (string, error) {
	alg, err := KeyAlgorithm(pub)
	if err != nil {
		return "", err
	}
	var p []byte
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if p, err = x509.MarshalPKIXPublicKey(k); err != nil {
			return "", fmt.Errorf("marshal public key: %w", err)
		}
	case ed25519.PublicKey:
		p = k
	default:
		return "", fmt.Errorf("KeyRecord wants a public key, not %T", pub)
	}
	return "v=DKIM1; k=" + alg.keyType() + "; p=" + base64.StdEncoding.EncodeToString(p), nil
}

// SplitTXT splits a record into character-strings of at most 255 octets, the most a
// TXT character-string holds (RFC 1035 §3.3); a verifier joins them again (RFC 6376
// §3.6.2.2). A 2048-bit RSA record needs two.
func SplitTXT(record string) []string {
	var out []string
	for len(record) > 255 {
		out = append(out, record[:255])
		record = record[255:]
	}
	return append(out, record)
}

// TXTValue returns record as the quoted character-strings of a zone file line:
// "v=DKIM1; k=rsa; p=MIIB..." "...". Key records contain no quote or backslash, so no
// escaping is needed.
func TXTValue(record string) string {
	parts := SplitTXT(record)
	for i, p := range parts {
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, " ")
}

// KeyName returns the DNS name of the key record for selector and domain (RFC 6376
// §3.6.2.1), with a final dot.
func KeyName(selector, domain string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".") + "."
}

// Key is a parsed key record (RFC 6376 §3.6.1).
type Key struct {
	Type      string           // k=: "rsa" or "ed25519"
	PublicKey crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey; nil when revoked
	Revoked   bool             // p= is empty (§3.6.1)
	Testing   bool             // t=y: the domain is testing DKIM
	Strict    bool             // t=s: i= must be in d= itself, not a subdomain
}

// ErrKeyRevoked is the error for a key record whose p= is empty.
var ErrKeyRevoked = errors.New("key revoked (empty p=)")

// ParseKeyRecord parses a key record, its character-strings already joined. v=, when
// present, must be DKIM1 and come first; h= (acceptable hashes), when present, must
// include sha256; s= (service types), when present, must include email or *; k= is rsa
// (the default) or ed25519. An empty p= gives a Key with Revoked set and ErrKeyRevoked.
// RSA keys are accepted as SubjectPublicKeyInfo or as a bare RSAPublicKey, since both
// are published, and must have at least MinRSABits bits.
func ParseKeyRecord(record string) (*Key, error) {
	tags, err := parseTagList(record)
	if err != nil {
		return nil, err
	}
	k := &Key{Type: "rsa"}
	var p *string
	for i, t := range tags {
		switch t.name {
		case "v":
			if i != 0 || t.value != "DKIM1" {
				return nil, fmt.Errorf("v=%s: must be DKIM1 and the first tag", t.value)
			}
		case "h":
			if !listHas(t.value, "sha256") {
				return nil, fmt.Errorf("h=%s does not allow sha256", t.value)
			}
		case "k":
			k.Type = strings.ToLower(t.value)
			if k.Type != "rsa" && k.Type != "ed25519" {
				return nil, fmt.Errorf("unknown key type k=%s", t.value)
			}
		case "s":
			if !listHas(t.value, "email") && !listHas(t.value, "*") {
				return nil, fmt.Errorf("s=%s: key not for email", t.value)
			}
		case "t":
			k.Testing = listHas(t.value, "y")
			k.Strict = listHas(t.value, "s")
		case "p":
			p = &t.value
		}
	}
	if p == nil {
		return nil, errors.New("required tag p= missing")
	}
	if isFWS(*p) {
		k.Revoked = true
		return k, ErrKeyRevoked
	}
	der, err := decodeBase64(*p)
	if err != nil {
		return nil, fmt.Errorf("p= is not base64: %w", err)
	}
	switch k.Type {
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 key of %d bytes, want %d", len(der), ed25519.PublicKeySize)
		}
		k.PublicKey = ed25519.PublicKey(der)
	default:
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			var perr error
			if pub, perr = x509.ParsePKCS1PublicKey(der); perr != nil {
				return nil, fmt.Errorf("p= is not an RSA public key: %w", err)
			}
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("k=rsa but p= holds a %T", pub)
		}
		if _, err := KeyAlgorithm(rk); err != nil {
			return nil, err
		}
		k.PublicKey = rk
	}
	return k, nil
}

// listHas reports whether the colon-separated list s contains v (case-insensitive).
func listHas(s, v string) bool {
	for _, e := range strings.Split(s, ":") {
		if strings.EqualFold(trimFWS(e), v) {
			return true
		}
	}
	return false
}
