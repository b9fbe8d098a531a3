package dnssec

import (
	"fmt"
	"time"

	"mxward/internal/dns"
)

// Extended DNS Error codes (RFC 8914 §4) that validation produces.
const (
	edeUnsupportedDNSKEYAlg  = 1
	edeUnsupportedDSDigest   = 2
	edeDNSSECBogus           = 6
	edeSignatureExpired      = 7
	edeSignatureNotYetValid  = 8
	edeDNSKEYMissing         = 9
	edeRRSIGsMissing         = 10
	edeNSECMissing           = 12
	edeNoReachableAuthority  = 22
	edeNetworkError          = 23
	edeUnsupportedNSEC3Iters = 27
)

// verdict is a judgement on part of a reply: its status, and for anything but Secure
// why, in words and as Extended DNS Errors.
type verdict struct {
	status dns.Status
	reason string
	ede    []dns.EDE
	// expires is the earliest expiration of the signatures the verdict rests on: the
	// data's own and those of the chain of trust and of any proof it needed. Zero
	// means that no signature bounds it (an unsigned anchor, a failure).
	expires time.Time
}

func secure() verdict { return verdict{status: dns.Secure} }

// bogus returns a Bogus verdict with one Extended DNS Error whose text is the reason.
func bogus(code uint16, format string, args ...any) verdict {
	r := fmt.Sprintf(format, args...)
	return verdict{status: dns.Bogus, reason: r, ede: []dns.EDE{{Code: code, Text: r}}}
}

// insecure returns an Insecure verdict; code 0 means no Extended DNS Error applies.
func insecure(code uint16, format string, args ...any) verdict {
	r := fmt.Sprintf(format, args...)
	v := verdict{status: dns.Insecure, reason: r}
	if code != 0 {
		v.ede = []dns.EDE{{Code: code, Text: r}}
	}
	return v
}

func indeterminate(format string, args ...any) verdict {
	return verdict{status: dns.Indeterminate, reason: fmt.Sprintf(format, args...)}
}

// wrap prefixes the reason with what was being checked, keeping status and codes.
func (v verdict) wrap(format string, args ...any) verdict {
	if v.reason != "" {
		v.reason = fmt.Sprintf(format, args...) + ": " + v.reason
	}
	return v
}

func (v verdict) ok() bool { return v.status == dns.Secure }

// until returns v bounded also by signatures that expire at t (zero: none).
func (v verdict) until(t time.Time) verdict {
	v.expires = soonest(v.expires, t)
	return v
}

// soonest returns the earlier of two signature expirations, zero standing for none.
func soonest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
