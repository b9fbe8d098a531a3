package lab

import (
	"net"
	"net/http"
	"strings"
)

// policyPath is where an MTA-STS policy is published (RFC 8461 §3.3).
const policyPath = "/.well-known/mta-sts.txt"

// policyHandler serves the policy of the domain named by the Host header,
// mta-sts.<domain>.
type policyHandler struct {
	policies map[string]string // domain (fully qualified) → policy text
}

func (h policyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	domain, ok := strings.CutPrefix(fqdn(host), "mta-sts.")
	p, found := h.policies[domain]
	if !ok || !found || r.URL.Path != policyPath {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain") // RFC 8461 §3.2
	_, _ = w.Write([]byte(p))
}
