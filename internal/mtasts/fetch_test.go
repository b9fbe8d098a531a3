package mtasts

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority for the loopback policy servers.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mxward test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names, valid from notBefore to notAfter. A nil
// ca makes it self-signed.
func (ca *testCA) leaf(t *testing.T, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	return ca.leafWith(t, names, notBefore, notAfter, nil)
}

// leafWith is leaf with a last change to the template before signing.
func (ca *testCA) leafWith(t *testing.T, names []string, notBefore, notAfter time.Time, edit func(*x509.Certificate)) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if edit != nil {
		edit(tmpl)
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startPolicyServer runs an HTTPS server on 127.0.0.1 with cert, stopped at cleanup.
func startPolicyServer(t *testing.T, cert tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Refused handshakes are what several tests expect; keep them out of the output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// dialTo sends connections for mta-sts.<domain>:443 to srv and refuses all others, so
// that no test ever resolves or reaches a real name.
func dialTo(srv *httptest.Server, domain string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "mta-sts."+domain+":443" {
			return nil, fmt.Errorf("test dialer: unexpected address %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	}
}

const testPolicy = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"

func servePolicy(contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.example.test" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		fmt.Fprint(w, body)
	}
}

// TestHTTPFetcher covers STS-05 … STS-09 against loopback servers.
func TestHTTPFetcher(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	good := ca.leaf(t, []string{"mta-sts.example.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	big := strings.Repeat("x: y\n", (1<<20)/5)

	tests := []struct {
		name    string
		cert    tls.Certificate
		handler http.Handler
		timeout time.Duration
		want    string // body, or "" with reason set
		reason  string
	}{
		{"STS-05 valid policy", good, servePolicy("text/plain", testPolicy), 0, testPolicy, ""},
		{"STS-08 charset utf-8", good, servePolicy("text/plain; charset=UTF-8", testPolicy), 0, testPolicy, ""},
		{"STS-08 other parameters ignored", good, servePolicy(`text/plain; format=flowed; charset="us-ascii"`, testPolicy), 0, testPolicy, ""},
		{"STS-06 wildcard certificate", ca.leaf(t, []string{"*.example.test"}, now.Add(-time.Hour), now.Add(time.Hour)),
			servePolicy("text/plain", testPolicy), 0, testPolicy, ""},
		{"STS-06 self-signed", (*testCA)(nil).leaf(t, []string{"mta-sts.example.test"}, now.Add(-time.Hour), now.Add(time.Hour)),
			servePolicy("text/plain", testPolicy), 0, "", ReasonWebPKI},
		{"STS-06 wrong name", ca.leaf(t, []string{"mta-sts.other.test"}, now.Add(-time.Hour), now.Add(time.Hour)),
			servePolicy("text/plain", testPolicy), 0, "", ReasonWebPKI},
		{"STS-06 name of the policy domain only", ca.leaf(t, []string{"example.test"}, now.Add(-time.Hour), now.Add(time.Hour)),
			servePolicy("text/plain", testPolicy), 0, "", ReasonWebPKI},
		{"STS-06 name in CN only", ca.leafWith(t, []string{"mta-sts.example.test"}, now.Add(-time.Hour), now.Add(time.Hour),
			func(c *x509.Certificate) { c.DNSNames = nil }),
			servePolicy("text/plain", testPolicy), 0, "", ReasonWebPKI},
		{"STS-06 wildcard too deep", ca.leaf(t, []string{"*.test"}, now.Add(-time.Hour), now.Add(time.Hour)),
			servePolicy("text/plain", testPolicy), 0, "", ReasonWebPKI},
		{"STS-06 expired", ca.leaf(t, []string{"mta-sts.example.test"}, now.Add(-2*time.Hour), now.Add(-time.Hour)),
			servePolicy("text/plain", testPolicy), 0, "", ReasonWebPKI},
		{"STS-07 redirect refused", good, http.RedirectHandler("https://mta-sts.example.test/other.txt", http.StatusFound), 0, "", ReasonRedirect},
		{"STS-07 permanent redirect refused", good, http.RedirectHandler("/.well-known/mta-sts.txt?x", http.StatusMovedPermanently), 0, "", ReasonRedirect},
		{"STS-07 not found", good, http.NotFoundHandler(), 0, "", ReasonStatus},
		{"STS-07 no content", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }), 0, "", ReasonStatus},
		{"STS-08 text/html", good, servePolicy("text/html", testPolicy), 0, "", ReasonContentType},
		{"STS-08 no content type", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte{0, 1, 2})
		}), 0, "", ReasonContentType},
		{"STS-08 charset latin1", good, servePolicy("text/plain; charset=iso-8859-1", testPolicy), 0, "", ReasonContentType},
		{"STS-09 1 MiB body with length", good, servePolicy("text/plain", big), 0, "", ReasonSize},
		{"STS-09 1 MiB body announced", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", fmt.Sprint(1<<20))
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		}), 0, "", ReasonSize},
		{"STS-09 1 MiB body chunked", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			for range 16 {
				w.Write([]byte(big[:64<<10]))
				w.(http.Flusher).Flush()
			}
		}), 0, "", ReasonSize},
		{"STS-09 slow server", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}), 200 * time.Millisecond, "", ReasonTimeout},
		{"STS-09 slow body", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("version: STSv1\n"))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}), 200 * time.Millisecond, "", ReasonTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startPolicyServer(t, tt.cert, tt.handler)
			f := &HTTPFetcher{RootCAs: ca.pool, Timeout: tt.timeout, DialContext: dialTo(srv, "example.test")}
			start := time.Now()
			body, err := f.Fetch(t.Context(), "Example.Test.")
			if tt.reason == "" {
				if err != nil || string(body) != tt.want {
					t.Fatalf("Fetch = %q, %v", body, err)
				}
				return
			}
			var fe *FetchError
			if !errors.As(err, &fe) || fe.Reason != tt.reason {
				t.Fatalf("Fetch = %d bytes, %v; want reason %s", len(body), err, tt.reason)
			}
			if tt.timeout > 0 && time.Since(start) > 3*time.Second {
				t.Errorf("timeout not honoured: took %v", time.Since(start))
			}
		})
	}
}

// TestHTTPFetcherNoCache checks that the request asks intermediaries not to answer
// from a cache (STS-07).
func TestHTTPFetcherNoCache(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.leaf(t, []string{"mta-sts.example.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var got string
	srv := startPolicyServer(t, cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Cache-Control")
		servePolicy("text/plain", testPolicy)(w, r)
	}))
	f := &HTTPFetcher{RootCAs: ca.pool, DialContext: dialTo(srv, "example.test")}
	if _, err := f.Fetch(t.Context(), "example.test"); err != nil {
		t.Fatal(err)
	}
	if got != "no-cache" {
		t.Errorf("Cache-Control = %q", got)
	}
}

// TestHTTPFetcherClientRedirect checks that a caller-supplied client still refuses
// redirects (STS-07).
func TestHTTPFetcherClientRedirect(t *testing.T) {
	ca := newTestCA(t)
	cert := ca.leaf(t, []string{"mta-sts.example.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	srv := startPolicyServer(t, cert, http.RedirectHandler("/elsewhere", http.StatusFound))
	client := &http.Client{Transport: &http.Transport{
		DialContext:     dialTo(srv, "example.test"),
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
	}}
	f := &HTTPFetcher{Client: client}
	_, err := f.Fetch(t.Context(), "example.test")
	var fe *FetchError
	if !errors.As(err, &fe) || fe.Reason != ReasonRedirect {
		t.Fatalf("Fetch error = %v, want redirect refusal", err)
	}
	if client.CheckRedirect != nil {
		t.Error("caller's client was modified")
	}
}

func TestHTTPFetcherInvalidDomain(t *testing.T) {
	f := &HTTPFetcher{DialContext: func(context.Context, string, string) (net.Conn, error) {
		t.Fatal("dialled for an invalid domain")
		return nil, nil
	}}
	for _, d := range []string{"", "a/b.example", "exa mple.test", "[127.0.0.1]"} {
		if _, err := f.Fetch(t.Context(), d); err == nil {
			t.Errorf("Fetch(%q) succeeded", d)
		}
	}
}

// TestManagerWithHTTPFetcher runs Lookup over the real fetcher: a good server yields
// a live policy; a server whose certificate fails Web PKI validation yields no policy
// (STS-06, STS-10) and a reportable fetch error.
func TestManagerWithHTTPFetcher(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	tests := []struct {
		name   string
		cert   tls.Certificate
		mode   Mode
		reason string
	}{
		{"valid", ca.leaf(t, []string{"mta-sts.example.test"}, now.Add(-time.Hour), now.Add(time.Hour)), ModeEnforce, ""},
		{"self-signed", (*testCA)(nil).leaf(t, []string{"mta-sts.example.test"}, now.Add(-time.Hour), now.Add(time.Hour)), "", ReasonWebPKI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startPolicyServer(t, tt.cert, servePolicy("text/plain", testPolicy))
			h := newHarness(t)
			h.m.Fetcher = &HTTPFetcher{RootCAs: ca.pool, DialContext: dialTo(srv, "example.test")}
			h.res.set(txtName, "v=STSv1; id=1")
			r, err := h.m.Lookup(t.Context(), "example.test")
			if err != nil {
				t.Fatal(err)
			}
			if tt.reason == "" {
				wantPolicy(t, r, tt.mode, SourceLive, "1")
				return
			}
			wantNone(t, r)
			var fe *FetchError
			if !errors.As(r.FetchError, &fe) || fe.Reason != tt.reason {
				t.Errorf("FetchError = %v", r.FetchError)
			}
		})
	}
}
