package dane

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"testing"
)

// TestMatchName is the DANE-23 table (RFC 7672 §3.2.3, RFC 6125 §6.4).
func TestMatchName(t *testing.T) {
	tests := []struct {
		presented, ref string
		want           bool
	}{
		{"mx.example.com", "mx.example.com", true},
		{"MX.Example.COM", "mx.example.com", true},        // case-insensitive
		{"mx.example.com.", "mx.example.com", true},       // trailing dots ignored
		{"mx.example.com", "MX.EXAMPLE.COM.", true},       // on either side
		{"*.example.com", "mx.example.com", true},         // wildcard: whole left-most label
		{"*.Example.Com.", "MX.example.com.", true},       // with case and dots
		{"*.example.com", "a.b.example.com", false},       // exactly one label
		{"*.example.com", "example.com", false},           // never the parent itself
		{"*.example.com", ".example.com", false},          // not an empty label
		{"smtp*.example.com", "smtp1.example.com", false}, // partial wildcard: never
		{"*smtp.example.com", "xsmtp.example.com", false},
		{"s*p.example.com", "smtp.example.com", false},
		{"mx.*.example.com", "mx.a.example.com", false}, // wildcard not left-most
		{"*.*.example.com", "a.b.example.com", false},
		{"*.com", "example.com", false}, // wildcard over a single label
		{"*", "example", false},
		{"*.example.com", "*.example.com", false}, // reference identifiers are never wildcards
		{"mx.example.com", "mx.example.org", false},
		{"mx.example.com", "xmx.example.com", false},
		{"mx.example.com", "", false},
		{"", "mx.example.com", false},
		{"mx..example.com", "mx..example.com", false}, // empty labels
		{"*.example.com", "mx.example.com.evil.test", false},
		{"*.example.com", "-mx.example.com", false},        // not a host-name label
		{"\u212aey.example.com", "key.example.com", false}, // no Unicode case folding
		{"\x88.example.com", "\x87.example.com", false},    // invalid UTF-8 compared byte for byte
	}
	for _, tt := range tests {
		if got := matchName(tt.presented, tt.ref); got != tt.want {
			t.Errorf("matchName(%q, %q) = %v, want %v", tt.presented, tt.ref, got, tt.want)
		}
	}
}

// TestPresentedNames: DNS-IDs only when present, the CN-ID only without them
// (DANE-23; decision 6).
func TestPresentedNames(t *testing.T) {
	tests := []struct {
		name string
		cert *x509.Certificate
		ref  string
		want bool
	}{
		{"SAN", &x509.Certificate{DNSNames: []string{"mx.example.test"}}, "mx.example.test", true},
		{"CN-without-SAN", &x509.Certificate{Subject: pkix.Name{CommonName: "mx.example.test"}}, "mx.example.test", true},
		{"CN-wildcard-without-SAN", &x509.Certificate{Subject: pkix.Name{CommonName: "*.example.test"}}, "mx.example.test", true},
		{"CN-ignored-with-SAN", &x509.Certificate{Subject: pkix.Name{CommonName: "mx.example.test"},
			DNSNames: []string{"other.example.test"}}, "mx.example.test", false},
		{"IP-SAN-does-not-hide-CN", &x509.Certificate{Subject: pkix.Name{CommonName: "mx.example.test"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}, "mx.example.test", true},
		{"nothing", &x509.Certificate{}, "mx.example.test", false},
	}
	for _, tt := range tests {
		if _, got := matchNames(tt.cert, []string{tt.ref}); got != tt.want {
			t.Errorf("%s: matchNames = %v, want %v", tt.name, got, tt.want)
		}
	}
}
