package lab

import (
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// Attack is a set of attacker behaviours, switched on per destination domain.
type Attack uint8

const (
	// Passive taps the connections to the domain's MX hosts and records every byte
	// that passes, so that a marker sent in clear can be found (Internet.Read).
	Passive Attack = 1 << iota
	// StripSTARTTLS removes STARTTLS from the MX hosts' EHLO replies and turns a
	// STARTTLS command sent anyway into an unknown one: the downgrade RFC 3207 §6
	// warns of. The stripped connection is tapped too.
	StripSTARTTLS
	// ForgeMX answers the domain's MX query with an unsigned MX record naming the
	// attacker's own host, mx.attacker.lab, which holds a lab-CA certificate for
	// that name.
	ForgeMX
	// ForgeSigned answers the A query for the domain's MX hosts with the attacker's
	// address, unsigned: for a signed zone, the RRSIGs are stripped.
	ForgeSigned
	// HideMTASTS answers the domain's _mta-sts TXT query with a forged, unsigned
	// NXDOMAIN: on first contact a sender then finds no policy at all (RFC 8461 §10).
	HideMTASTS
)

// String names the behaviours in a, for logs and the lab matrix.
func (a Attack) String() string {
	if a == 0 {
		return "none"
	}
	var s []string
	for _, n := range []struct {
		bit  Attack
		name string
	}{{Passive, "passive"}, {StripSTARTTLS, "strip-starttls"}, {ForgeMX, "forge-mx"}, {ForgeSigned, "forge-signed"}, {HideMTASTS, "hide-mta-sts"}} {
		if a&n.bit != 0 {
			s = append(s, n.name)
		}
	}
	return strings.Join(s, "+")
}

// attacks holds the switches, by domain (fully qualified, lower case).
type attacks struct {
	mu sync.Mutex
	on map[string]Attack
}

func (a *attacks) set(domain string, at Attack) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.on == nil {
		a.on = make(map[string]Attack)
	}
	a.on[fqdn(domain)] = at
}

func (a *attacks) get(domain string) Attack {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.on[fqdn(domain)]
}

// fqdn returns name lower case with a trailing dot.
func fqdn(name string) string { return strings.ToLower(mdns.Fqdn(name)) }
