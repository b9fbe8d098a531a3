package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The interoperability tests check mxward's signatures with dkimpy (Debian package
// python3-dkim), an independent implementation, and mxward's verifier with dkimpy's
// signatures. Key records are handed to dkimpy through its dnsfunc parameter, so no
// DNS is involved.

const pythonPath = "/usr/bin/python3"

// dkimpyVerify reads a message on standard input and exits 0 if its first signature
// verifies with the key record given as argv[1] for the name argv[2].
const dkimpyVerify = `
import sys, dkim
record, name = sys.argv[1].encode(), sys.argv[2].encode()
def dnsfunc(qname, timeout=5):
    return record if qname == name else None
d = dkim.DKIM(sys.stdin.buffer.read())
ok = d.verify(dnsfunc=dnsfunc)
if not ok:
    print("dkimpy:", d.logger, file=sys.stderr)
sys.exit(0 if ok else 1)
`

// dkimpySign reads a message on standard input and prints the DKIM-Signature field
// dkimpy makes for it: argv = algorithm, canonicalization, selector, domain, key file.
const dkimpySign = `
import sys, dkim
alg, canon, sel, dom, keyfile = sys.argv[1:6]
c = canon.encode().split(b"/")
key = open(keyfile, "rb").read()
sig = dkim.sign(sys.stdin.buffer.read(), sel.encode(), dom.encode(), key,
                canonicalize=(c[0], c[1]), signature_algorithm=alg.encode(),
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig)
`

// requireDkimpy skips the test when dkimpy is not installed, or fails it when
// MXWARD_REQUIRE_INTEROP=1 says the environment must have it.
func requireDkimpy(t *testing.T) {
	t.Helper()
	out, err := exec.Command(pythonPath, "-c", "import dkim, nacl").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("dkimpy (Debian package python3-dkim) not available: %v %s", err, bytes.TrimSpace(out))
	if os.Getenv("MXWARD_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s; required by MXWARD_REQUIRE_INTEROP=1", msg)
	}
	t.Skip(msg)
}

func runPython(t *testing.T, script, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pythonPath, append([]string{"-c", script}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return stdout.String(), err
}

// dkimpy verifies what mxward signs, for both algorithms and both canonicalizations,
// and rejects it once a signed field changes.
func TestInteropDkimpyVerifies(t *testing.T) {
	requireDkimpy(t)
	msg := crlf(testMessage)
	for _, key := range []crypto.Signer{rfc8463Key(t), testRSAKey(t)} {
		for _, c := range []Canonicalization{Simple, Relaxed} {
			alg, _ := KeyAlgorithm(key.Public())
			t.Run(fmt.Sprintf("%s/%s", alg, c), func(t *testing.T) {
				s := &Signer{Domain: "example.com", Selector: "sel1", Key: key, HeaderCanon: c, BodyCanon: c, Expiry: time.Hour}
				h, err := s.Sign(strings.NewReader(msg))
				if err != nil {
					t.Fatal(err)
				}
				rec, _ := KeyRecord(key.Public())
				if _, err := runPython(t, dkimpyVerify, string(h)+msg, rec, KeyName("sel1", "example.com")); err != nil {
					t.Errorf("dkimpy rejects mxward's signature: %v\n%s", err, h)
				}
				forged := strings.Replace(string(h)+msg, "From: Alice", "From: <ceo@example.com>\r\nFrom: Alice", 1)
				if _, err := runPython(t, dkimpyVerify, forged, rec, KeyName("sel1", "example.com")); err == nil {
					t.Errorf("dkimpy accepts a message with a From added after signing")
				}
			})
		}
	}
}

// mxward verifies what dkimpy signs.
func TestInteropVerifyDkimpy(t *testing.T) {
	requireDkimpy(t)
	dir := t.TempDir()
	rsaFile := dir + "/rsa.pem"
	edFile := dir + "/ed25519.key"
	pk := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSAKey(t))})
	if err := os.WriteFile(rsaFile, pk, 0o600); err != nil {
		t.Fatal(err)
	}
	// dkimpy takes an Ed25519 key as the base64 of its 32-byte seed.
	if err := os.WriteFile(edFile, []byte(base64.StdEncoding.EncodeToString(rfc8463Key(t).Seed())), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := crlf(testMessage)
	for _, tc := range []struct {
		alg  Algorithm
		file string
		pub  crypto.PublicKey
	}{
		{RSASHA256, rsaFile, &testRSAKey(t).PublicKey},
		{Ed25519SHA256, edFile, rfc8463Key(t).Public().(ed25519.PublicKey)},
	} {
		for _, c := range []string{"simple/simple", "relaxed/relaxed", "relaxed/simple"} {
			t.Run(string(tc.alg)+"/"+c, func(t *testing.T) {
				h, err := runPython(t, dkimpySign, msg, string(tc.alg), c, "py", "example.org", tc.file)
				if err != nil {
					t.Fatal(err)
				}
				rec, _ := KeyRecord(tc.pub)
				keys := staticKeys{"py._domainkey.example.org.": rec}
				if err := verifyOne(t, keys, h+msg, time.Now()); err != nil {
					t.Errorf("dkimpy's signature does not verify: %v\n%s", err, h)
				}
				if err := verifyOne(t, keys, h+strings.Replace(msg, "attached", "enclosed", 1), time.Now()); err == nil {
					t.Error("dkimpy's signature verifies on a changed body")
				}
			})
		}
	}
}
