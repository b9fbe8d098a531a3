package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// Fetcher retrieves the policy text of a domain. HTTPFetcher is the real one; tests
// and tools substitute their own.
type Fetcher interface {
	Fetch(ctx context.Context, domain string) (body []byte, err error)
}

// Defaults for HTTPFetcher, the values RFC 8461 §3.3 suggests (STS-09).
const (
	DefaultFetchTimeout = time.Minute
	DefaultMaxSize      = 64 << 10
)

// Reasons carried by FetchError. "webpki" is a certificate that failed Web PKI
// validation (TLS-RPT "sts-webpki-invalid"); the others are "sts-policy-fetch-error"
// (RFC 8460 §4.3.2.2).
const (
	ReasonWebPKI      = "webpki"
	ReasonRedirect    = "redirect"
	ReasonStatus      = "status"
	ReasonContentType = "content-type"
	ReasonSize        = "size"
	ReasonTimeout     = "timeout"
	ReasonNetwork     = "network"
)

// errRedirect is what CheckRedirect returns: redirects must not be followed (STS-07).
var errRedirect = errors.New("redirect refused (RFC 8461 §3.3)")

// FetchError reports a failed policy fetch. Any such failure means this fetch yields no
// policy (STS-10); a cached policy still applies (STS-14).
type FetchError struct {
	Domain string
	Reason string // one of the Reason constants
	Err    error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("fetch MTA-STS policy for %s: %s: %v", e.Domain, e.Reason, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// HTTPFetcher fetches https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2,
// STS-05 … STS-09).
//
// The server must present a certificate that chains to RootCAs (the system roots when
// nil) and names mta-sts.<domain> in a DNS SAN (STS-06; crypto/x509 ignores the CN).
// Only status 200 with media type text/plain is accepted; redirects are refused, no HTTP
// cache is consulted, and the body is limited in size and time.
type HTTPFetcher struct {
	// Client, when set, is used instead of one built from the fields below. Its
	// redirect policy is replaced so that redirects are always refused.
	Client *http.Client
	// RootCAs are the trusted Web PKI roots; nil means the system roots.
	RootCAs *x509.CertPool
	// Timeout bounds the whole fetch, body included; zero means DefaultFetchTimeout.
	Timeout time.Duration
	// MaxSize bounds the body in bytes; zero means DefaultMaxSize.
	MaxSize int64
	// DialContext, when set, opens the connections of the default client. Tests use it
	// to send mta-sts.<domain>:443 to a loopback server; the TLS server name stays
	// mta-sts.<domain>.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Fetch implements Fetcher.
func (f *HTTPFetcher) Fetch(ctx context.Context, domain string) ([]byte, error) {
	domain = normalizeDomain(domain)
	if !validHostname(domain) {
		return nil, &FetchError{Domain: domain, Reason: ReasonNetwork, Err: fmt.Errorf("invalid domain name %q", domain)}
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	url := "https://mta-sts." + domain + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &FetchError{Domain: domain, Reason: ReasonNetwork, Err: err}
	}
	// No HTTP cache may stand between us and the policy (STS-07).
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "mxward-mta-sts")
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, &FetchError{Domain: domain, Reason: classify(ctx, err), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &FetchError{Domain: domain, Reason: ReasonStatus, Err: fmt.Errorf("HTTP status %s", resp.Status)}
	}
	if err := checkContentType(resp.Header.Get("Content-Type")); err != nil {
		return nil, &FetchError{Domain: domain, Reason: ReasonContentType, Err: err}
	}
	limit := f.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	if resp.ContentLength > limit {
		return nil, &FetchError{Domain: domain, Reason: ReasonSize, Err: fmt.Errorf("body of %d bytes exceeds %d", resp.ContentLength, limit)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, &FetchError{Domain: domain, Reason: classify(ctx, err), Err: fmt.Errorf("read body: %w", err)}
	}
	if ctx.Err() != nil {
		// A body that ended as the time ran out may be cut short even when the read
		// reported no error (a server that gives up and closes its chunked stream);
		// a truncated mx list must not pass for the policy.
		return nil, &FetchError{Domain: domain, Reason: ReasonTimeout, Err: fmt.Errorf("read body: %w", ctx.Err())}
	}
	if int64(len(body)) > limit {
		return nil, &FetchError{Domain: domain, Reason: ReasonSize, Err: fmt.Errorf("body exceeds %d bytes", limit)}
	}
	return body, nil
}

// client returns the configured client with redirects refused, or a fresh one.
func (f *HTTPFetcher) client() *http.Client {
	refuse := func(*http.Request, []*http.Request) error { return errRedirect }
	if f.Client != nil {
		c := *f.Client
		c.CheckRedirect = refuse
		return &c
	}
	dial := f.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
	}
	return &http.Client{
		CheckRedirect: refuse,
		Transport: &http.Transport{
			// No proxy: the policy host is contacted directly, as the RFC describes.
			DialContext:         dial,
			TLSClientConfig:     &tls.Config{RootCAs: f.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 30 * time.Second,
			ForceAttemptHTTP2:   true,
			DisableKeepAlives:   true,
		},
	}
}

// checkContentType requires text/plain (STS-08, RFC 8461 §3.2). A charset parameter,
// when present, must be utf-8 or us-ascii; other parameters are ignored.
func checkContentType(v string) error {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return fmt.Errorf("content type %q: %w", v, err)
	}
	if mt != "text/plain" {
		return fmt.Errorf("content type %q, want text/plain", mt)
	}
	if cs, ok := params["charset"]; ok {
		switch strings.ToLower(cs) {
		case "utf-8", "us-ascii":
		default:
			return fmt.Errorf("charset %q, want utf-8 or us-ascii", cs)
		}
	}
	return nil
}

// classify names the cause of a failed request for FetchError.Reason.
func classify(ctx context.Context, err error) string {
	var cve *tls.CertificateVerificationError
	var hn x509.HostnameError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var ne net.Error
	switch {
	case errors.Is(err, errRedirect):
		return ReasonRedirect
	case errors.As(err, &cve), errors.As(err, &hn), errors.As(err, &ua), errors.As(err, &ci):
		return ReasonWebPKI
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return ReasonTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	}
	return ReasonNetwork
}

// normalizeDomain lower-cases a domain and drops its trailing dot.
func normalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}
