package dnslab

import (
	"context"
	"fmt"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Status is a validation state in the sense of RFC 4035 §4.3, spelled as
// internal/dns spells its own, so verdicts compare directly.
type Status string

const (
	Secure   Status = "secure"
	Insecure Status = "insecure"
	Bogus    Status = "bogus"
)

// A Verdict is how the lab's Unbound judged one question.
type Verdict struct {
	// Status is Secure for a NOERROR or NXDOMAIN reply with the AD bit,
	// Insecure for one without, and Bogus for SERVFAIL: with the settings the
	// lab gives Unbound, a SERVFAIL means validation failed, and EDE says how.
	Status Status
	Rcode  int
	// EDE holds the INFO-CODEs of the reply's Extended DNS Error options
	// (RFC 8914 §4), in order; Reason joins their EXTRA-TEXTs.
	EDE    []uint16
	Reason string
}

func (v Verdict) String() string {
	s := fmt.Sprintf("%s (%s", v.Status, mdns.RcodeToString[v.Rcode])
	for _, c := range v.EDE {
		s += fmt.Sprintf(", EDE %d %s", c, mdns.ExtendedErrorCodeToString[c])
	}
	if v.Reason != "" {
		s += ": " + v.Reason
	}
	return s + ")"
}

// DNSSECFailure reports whether code is one of the Extended DNS Errors that
// RFC 8914 §4 assigns to DNSSEC validation (1 to 12).
func DNSSECFailure(code uint16) bool {
	return code >= mdns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm && code <= mdns.ExtendedErrorCodeNSECMissing
}

// askTimeout bounds one query to the lab's Unbound, which may itself have to ask
// NSD a few times and retry after a bogus reply.
const askTimeout = 10 * time.Second

// Ask sends name/qtype to the lab's Unbound with DO and AD set (RFC 3225, RFC 6840
// §5.7), and CD when cd is true, which makes Unbound return what it fetched
// without judging it (RFC 4035 §3.2.2). A truncated UDP reply is retried over TCP.
func (l *Lab) Ask(ctx context.Context, name string, qtype uint16, cd bool) (*mdns.Msg, error) {
	return ask(ctx, l.Resolver, name, qtype, true, cd)
}

// ask sends one question to server. rd is the RD bit: set for Unbound, clear for
// NSD.
func ask(ctx context.Context, server, name string, qtype uint16, rd, cd bool) (*mdns.Msg, error) {
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	q.RecursionDesired = rd
	q.AuthenticatedData = true
	q.CheckingDisabled = cd
	q.SetEdns0(1232, true)
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	c := &mdns.Client{Net: "udp", Timeout: askTimeout}
	resp, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("ask %s for %s %s: %w", server, name, mdns.TypeToString[qtype], err)
	}
	return resp, nil
}

// Verdict asks the lab's Unbound name/qtype and returns its judgement. An error
// means there was no usable reply, or a reply whose rcode is none of NOERROR,
// NXDOMAIN and SERVFAIL.
func (l *Lab) Verdict(ctx context.Context, name string, qtype uint16) (Verdict, error) {
	resp, err := l.Ask(ctx, name, qtype, false)
	if err != nil {
		return Verdict{}, err
	}
	v, err := verdictOf(resp)
	if err != nil {
		return v, fmt.Errorf("verdict on %s %s: %w", name, mdns.TypeToString[qtype], err)
	}
	return v, nil
}

// verdictOf classifies a validating resolver's reply.
func verdictOf(m *mdns.Msg) (Verdict, error) {
	v := Verdict{Rcode: m.Rcode}
	var reasons []string
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if ede, ok := o.(*mdns.EDNS0_EDE); ok {
				v.EDE = append(v.EDE, ede.InfoCode)
				if ede.ExtraText != "" {
					reasons = append(reasons, ede.ExtraText)
				}
			}
		}
	}
	v.Reason = strings.Join(reasons, "; ")
	switch m.Rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
		v.Status = Insecure
		if m.AuthenticatedData {
			v.Status = Secure
		}
	case mdns.RcodeServerFailure:
		v.Status = Bogus
	default:
		return v, fmt.Errorf("unexpected rcode %s", mdns.RcodeToString[m.Rcode])
	}
	return v, nil
}
