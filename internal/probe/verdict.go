package probe

// Threat names, stable in the JSON output.
const (
	ThreatPassive   = "passive_eavesdropping"
	ThreatStripping = "starttls_stripping"
	ThreatForgedMX  = "forged_mx"
	ThreatForgedCrt = "forged_certificate"
)

// Overall verdicts and the exit status each maps to.
const (
	Protected     = "protected"     // exit 0: every threat is stopped
	Opportunistic = "opportunistic" // exit 1: some threat is not stopped
	Broken        = "broken"        // exit 2: a policy demands what delivery cannot get
)

// Facts are what the verdict depends on, gathered by Check. Keeping them apart from
// the gathering makes the verdict a pure function that can be table-tested.
type Facts struct {
	// MXSecure is set when the MX RRset (or the denial for an implicit MX) was
	// DNSSEC-secure (RFC 7672 §2.2.1).
	MXSecure bool
	// RouteError is why no route could be found (bogus MX, no address, …); "" if one was.
	RouteError string
	// STSEnforce and ListEnforce are set when an MTA-STS policy (RFC 8461 §5) or a
	// static list entry in mode enforce applies to the domain.
	STSEnforce  bool
	ListEnforce bool
	// ListVerify is set when the list entry also requires a Web PKI certificate (its
	// minimum level is not encrypt).
	ListVerify bool
	Hosts      []HostFacts
}

// HostFacts are the facts for one MX host.
type HostFacts struct {
	Name string
	// DANE is the TLSA outcome: "not_applicable", "authenticate", "encrypt_only" or
	// "unreachable" (RFC 7672 §2.2).
	DANE string
	// LocalTLS is set when the operator's policy for the domain requires TLS.
	LocalTLS bool
	// Pinned is set when a live TLS pin decides the host: nothing stronger applies,
	// and TLS is required with any certificate.
	Pinned bool
	// Deferred is set when delivery would not even try the host (tlspolicy.Decision.Defer).
	Deferred string
	// Probed is set when the probe reached the server (it greeted); the fields below
	// are meaningful only then.
	Probed bool
	// Unreached is set when a probe was tried but never got a greeting: the verdict for
	// the host then rests on DNS alone.
	Unreached bool
	ProbeErr  string
	STARTTLS  bool // offered and the handshake completed
	DANEMatch bool // the chain matched a usable TLSA record
	WebPKI    bool // the chain verified to the Web PKI roots for the MX name
}

// Threat is the verdict on one threat.
type Threat struct {
	Threat    string `json:"threat"`
	Protected bool   `json:"protected"`
	// By names the mechanism that stops the threat; Why says why nothing does.
	By  string `json:"by,omitempty"`
	Why string `json:"why,omitempty"`
}

// Verdict is the outcome of Judge.
type Verdict struct {
	Verdict  string   `json:"verdict"`
	Threats  []Threat `json:"threats"`
	Problems []string `json:"problems,omitempty"` // why the verdict is Broken
	// Notes qualify the verdict, e.g. MX hosts the probe could not reach from here.
	Notes []string `json:"notes,omitempty"`
}

// ExitCode maps the verdict to the exit status of `mxward check DOMAIN`.
func (v Verdict) ExitCode() int {
	switch v.Verdict {
	case Protected:
		return 0
	case Opportunistic:
		return 1
	}
	return 2
}

// Judge states, from the facts alone, which threats delivery to the domain resists and
// whether a published policy makes delivery fail.
func Judge(f Facts) Verdict {
	var v Verdict
	if f.RouteError != "" {
		v.Problems = append(v.Problems, "no route: "+f.RouteError)
	}
	for _, h := range f.Hosts {
		if h.Unreached {
			v.Notes = append(v.Notes, h.Name+": not reached from this host ("+h.ProbeErr+"); outgoing port 25 may be blocked here, so what its certificate would show is unknown and the verdict rests on DNS alone")
		}
	}
	all := func(p func(HostFacts) bool) bool {
		if len(f.Hosts) == 0 {
			return false
		}
		for _, h := range f.Hosts {
			if !p(h) {
				return false
			}
		}
		return true
	}
	any := func(p func(HostFacts) bool) bool {
		for _, h := range f.Hosts {
			if p(h) {
				return true
			}
		}
		return false
	}
	daneTLS := all(func(h HostFacts) bool { return h.DANE == "authenticate" || h.DANE == "encrypt_only" })
	daneAuth := all(func(h HostFacts) bool { return h.DANE == "authenticate" })
	localTLS := all(func(h HostFacts) bool { return h.LocalTLS })
	pinned := all(func(h HostFacts) bool { return h.Pinned })
	probedAll := all(func(h HostFacts) bool { return h.Probed })
	starttlsAll := all(func(h HostFacts) bool { return h.Probed && h.STARTTLS })

	// Broken: a policy that makes delivery fail (the self-inflicted outage).
	for _, h := range f.Hosts {
		if h.DANE == "unreachable" {
			v.Problems = append(v.Problems, h.Name+": TLSA lookup failed; delivery skips the host (RFC 7672 §2.1.2)")
		}
	}
	if any(func(h HostFacts) bool { return h.DANE == "authenticate" }) {
		daneHosts := 0
		matched := 0
		for _, h := range f.Hosts {
			if h.DANE == "authenticate" && h.Probed {
				daneHosts++
				if h.DANEMatch {
					matched++
				}
			}
		}
		if daneHosts > 0 && matched == 0 {
			v.Problems = append(v.Problems, "no MX host's certificate matches its TLSA records (RFC 7672 §3.1)")
		}
	}
	if (f.STSEnforce || f.ListEnforce && f.ListVerify) && probedAll && !any(func(h HostFacts) bool { return h.WebPKI && h.Deferred == "" }) {
		v.Problems = append(v.Problems, "policy in mode enforce, but no MX host presents a certificate the Web PKI verifies for its name (RFC 8461 §4.2)")
	}
	if len(f.Hosts) > 0 && all(func(h HostFacts) bool { return h.Deferred != "" }) {
		v.Problems = append(v.Problems, "delivery would defer at every MX host: "+f.Hosts[0].Deferred)
	}

	policyTLS, policyBy := false, ""
	switch {
	case daneTLS:
		policyTLS, policyBy = true, "DANE (secure TLSA records make TLS mandatory, RFC 7672 §2.2)"
	case f.STSEnforce:
		policyTLS, policyBy = true, "MTA-STS in mode enforce (RFC 8461 §5)"
	case f.ListEnforce:
		policyTLS, policyBy = true, "static policy list entry in mode enforce"
	case localTLS:
		policyTLS, policyBy = true, "the operator's TLS policy for the domain"
	case pinned:
		// A pin requires TLS but authenticates nothing: it counts against stripping
		// and eavesdropping only, never against a forged MX or certificate.
		policyTLS, policyBy = true, "a TLS pin: the domain completed STARTTLS before, so TLS is required (any certificate)"
	}

	passive := Threat{Threat: ThreatPassive}
	switch {
	case policyTLS:
		passive.Protected, passive.By = true, policyBy
	case starttlsAll:
		passive.Protected, passive.By = true, "opportunistic STARTTLS, which every MX host offers (RFC 3207)"
	case !probedAll:
		passive.Why = "no policy requires TLS and not every MX host was probed"
	default:
		passive.Why = "some MX host does not offer STARTTLS, and no policy requires TLS"
	}

	strip := Threat{Threat: ThreatStripping}
	if policyTLS {
		strip.Protected, strip.By = true, policyBy
	} else {
		strip.Why = "TLS is opportunistic: no DANE, MTA-STS enforce, list enforce, operator policy or TLS pin requires it"
	}

	forgedMX := Threat{Threat: ThreatForgedMX}
	switch {
	case f.MXSecure && daneTLS:
		forgedMX.Protected, forgedMX.By = true, "DNSSEC-signed MX records with DANE (RFC 7672 §2.2.1)"
	case f.STSEnforce:
		forgedMX.Protected, forgedMX.By = true, "MTA-STS enforce: MX hosts must match the policy's patterns (RFC 8461 §4.1)"
	case f.ListEnforce:
		forgedMX.Protected, forgedMX.By = true, "static policy list enforce: MX hosts must match its patterns"
	case !f.MXSecure:
		forgedMX.Why = "the MX records are not DNSSEC-secure and no MTA-STS or list policy names the MX hosts"
	default:
		forgedMX.Why = "the MX records are signed but no DANE or MTA-STS policy binds the hosts to them"
	}

	forgedCert := Threat{Threat: ThreatForgedCrt}
	switch {
	case daneAuth:
		forgedCert.Protected, forgedCert.By = true, "DANE authentication of the certificate (RFC 7672 §3)"
	case f.STSEnforce:
		forgedCert.Protected, forgedCert.By = true, "Web PKI verification under MTA-STS enforce (RFC 8461 §4.2)"
	case f.ListEnforce && f.ListVerify:
		forgedCert.Protected, forgedCert.By = true, "Web PKI verification under the static list's enforce entry"
	case daneTLS:
		forgedCert.Why = "the TLSA records are unusable: TLS is required but any certificate is accepted (RFC 7672 §2.2.3)"
	default:
		forgedCert.Why = "no DANE or MTA-STS enforce: any certificate is accepted"
	}

	v.Threats = []Threat{passive, strip, forgedMX, forgedCert}
	if f.RouteError != "" {
		// With no route there is no delivery to protect; what the threats would meet
		// cannot be told.
		for i := range v.Threats {
			v.Threats[i] = Threat{Threat: v.Threats[i].Threat, Why: "no route to the domain, nothing would be delivered"}
		}
	}
	switch {
	case len(v.Problems) > 0:
		v.Verdict = Broken
	case passive.Protected && strip.Protected && forgedMX.Protected && forgedCert.Protected:
		v.Verdict = Protected
	default:
		v.Verdict = Opportunistic
	}
	return v
}
