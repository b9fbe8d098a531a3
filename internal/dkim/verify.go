package dkim

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNoKey is what a LookupTXT function returns (possibly wrapped) when the key
// record's name does not exist or has no TXT records: a permanent failure, unlike
// every other lookup error (RFC 6376 §6.1.2).
var ErrNoKey = errors.New("no key record")

// LookupTXT returns the TXT records at name (a fully qualified name with a final
// dot), each record's character-strings joined.
type LookupTXT func(ctx context.Context, name string) ([]string, error)

// Error is why a signature did not verify. Temporary is true when the key could not
// be looked up for a reason that may go away (RFC 6376 §6.1: TEMPFAIL); otherwise the
// signature failed permanently (PERMFAIL).
type Error struct {
	Temporary bool
	Err       error
}

func (e *Error) Error() string {
	if e.Temporary {
		return "dkim: temporary failure: " + e.Err.Error()
	}
	return "dkim: " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func permFail(format string, args ...any) *Error {
	return &Error{Err: fmt.Errorf(format, args...)}
}

// IsTemporary reports whether err is a temporary verification failure.
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Temporary
}

// Result is the outcome of one DKIM-Signature field.
type Result struct {
	// Signature is the parsed field; nil when it did not parse.
	Signature *Signature
	// Err is nil when the signature verified.
	Err error
	// Testing is set when the key record has t=y (RFC 6376 §3.6.1): the domain is
	// testing DKIM, and a failure should be treated as no signature.
	Testing bool
}

// maxSignatures bounds how many signatures of one message are checked, so that a
// message cannot make the verifier look up and hash without limit (RFC 6376 §8.4).
const maxSignatures = 8

// Verifier checks the DKIM signatures of messages.
type Verifier struct {
	// Lookup finds key records; required.
	Lookup LookupTXT
	// Now gives the time expiry is checked against; nil means time.Now.
	Now func() time.Time
}

// Verify reads a message and checks each of its DKIM-Signature fields, the first
// maxSignatures of them, in order. The error is about reading the message; each
// signature's outcome is in its Result.
func (v *Verifier) Verify(ctx context.Context, r io.Reader) ([]Result, error) {
	lr := &lineReader{r: bufio.NewReaderSize(r, 8<<10)}
	fields, err := readHeader(lr)
	if err != nil {
		return nil, fmt.Errorf("dkim: read header: %w", err)
	}
	var results []Result
	var sigFields []field
	for _, f := range fields {
		if !strings.EqualFold(f.name, "DKIM-Signature") {
			continue
		}
		if len(results) >= maxSignatures {
			results = append(results, Result{Err: permFail("more than %d signatures; not checked", maxSignatures)})
			sigFields = append(sigFields, f)
			continue
		}
		s, err := ParseSignature(string(f.value()))
		res := Result{Signature: s}
		if err != nil {
			res.Signature, res.Err = nil, permFail("signature: %w", err)
		}
		results = append(results, res)
		sigFields = append(sigFields, f)
	}
	if len(results) == 0 {
		return nil, nil
	}
	bh, err := hashBody(lr.r, func(yield func(Canonicalization) bool) {
		for _, res := range results {
			if res.Signature != nil && !yield(res.Signature.BodyCanon) {
				return
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("dkim: read body: %w", err)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	for i := range results {
		res := &results[i]
		if res.Err != nil {
			continue
		}
		res.Testing, res.Err = v.check(ctx, res.Signature, sigFields[i], fields, bh[res.Signature.BodyCanon], now())
	}
	return results, nil
}

// check verifies one parsed signature (RFC 6376 §6.1.1 - §6.1.3).
func (v *Verifier) check(ctx context.Context, s *Signature, sigField field, fields []field, bodyHash []byte, now time.Time) (testing bool, err error) {
	if !s.Expiration.IsZero() && now.After(s.Expiration) {
		return false, permFail("signature expired at %s", s.Expiration.Format(time.RFC3339))
	}
	key, err := v.key(ctx, s)
	if err != nil {
		return false, err
	}
	if key.Strict {
		at := strings.LastIndexByte(s.Identity, '@')
		if !strings.EqualFold(strings.TrimSuffix(s.Identity[at+1:], "."), s.Domain) {
			return key.Testing, permFail("key has t=s but i=%s is a subdomain of d=%s", s.Identity, s.Domain)
		}
	}
	if subtle.ConstantTimeCompare(bodyHash, s.BodyHash) != 1 {
		return key.Testing, permFail("body hash does not match (the body was changed)")
	}
	h := sha256.New()
	var buf []byte
	for _, f := range selectFields(fields, s.Headers) {
		buf = canonicalHeader(buf[:0], f, s.HeaderCanon)
		h.Write(buf)
	}
	buf = canonicalHeader(buf[:0], field{name: sigField.name, raw: withoutSignature(sigField.raw)}, s.HeaderCanon)
	if s.HeaderCanon == Relaxed {
		buf = buf[:len(buf)-2]
	}
	h.Write(buf)
	digest := h.Sum(nil)
	switch pub := key.PublicKey.(type) {
	case *rsa.PublicKey:
		if s.Algorithm != RSASHA256 {
			return key.Testing, permFail("a=%s with an RSA key", s.Algorithm)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, s.Signature); err != nil {
			return key.Testing, permFail("signature does not verify (a signed header field was changed)")
		}
	case ed25519.PublicKey:
		if s.Algorithm != Ed25519SHA256 {
			return key.Testing, permFail("a=%s with an Ed25519 key", s.Algorithm)
		}
		if !ed25519.Verify(pub, digest, s.Signature) {
			return key.Testing, permFail("signature does not verify (a signed header field was changed)")
		}
	}
	return key.Testing, nil
}

// key looks up and parses the signature's key record. The first record that parses
// is used (RFC 6376 §3.6.2.2 leaves the choice among several to the verifier).
func (v *Verifier) key(ctx context.Context, s *Signature) (*Key, error) {
	name := KeyName(s.Selector, s.Domain)
	records, err := v.Lookup(ctx, name)
	if errors.Is(err, ErrNoKey) || err == nil && len(records) == 0 {
		return nil, permFail("no key record at %s", name)
	}
	if err != nil {
		return nil, &Error{Temporary: true, Err: fmt.Errorf("look up %s: %w", name, err)}
	}
	var firstErr error
	for _, rec := range records {
		k, err := ParseKeyRecord(rec)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if k.Type != s.Algorithm.keyType() {
			firstErr = fmt.Errorf("k=%s does not match a=%s", k.Type, s.Algorithm)
			continue
		}
		return k, nil
	}
	return nil, permFail("key record at %s: %w", name, firstErr)
}

// withoutSignature returns the raw DKIM-Signature field with the value of its b= tag
// deleted, white space around it included, and without the final CRLF: the form in
// which the field is hashed (RFC 6376 §3.7). "bh=" is a different tag and stays.
func withoutSignature(raw []byte) []byte {
	raw = bytes.TrimSuffix(raw, []byte("\r\n"))
	colon := bytes.IndexByte(raw, ':')
	out := append([]byte(nil), raw[:colon+1]...)
	rest := raw[colon+1:]
	for len(rest) > 0 {
		spec := rest
		end := bytes.IndexByte(rest, ';')
		if end >= 0 {
			spec = rest[:end]
		}
		if name, _, ok := bytes.Cut(spec, []byte("=")); ok && string(bytes.Trim(name, " \t\r\n")) == "b" {
			spec = spec[:len(name)+1]
		}
		out = append(out, spec...)
		if end < 0 {
			break
		}
		out = append(out, ';')
		rest = rest[end+1:]
	}
	return out
}
