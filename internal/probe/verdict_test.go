package probe

import "testing"

func TestJudge(t *testing.T) {
	daneOK := HostFacts{Name: "mx.a.test", DANE: "authenticate", Probed: true, STARTTLS: true, DANEMatch: true}
	daneBad := HostFacts{Name: "mx.a.test", DANE: "authenticate", Probed: true, STARTTLS: true}
	plainTLS := HostFacts{Name: "mx.b.test", DANE: "not_applicable", Probed: true, STARTTLS: true}
	noTLS := HostFacts{Name: "mx.c.test", DANE: "not_applicable", Probed: true}
	webpki := HostFacts{Name: "mx.d.test", DANE: "not_applicable", Probed: true, STARTTLS: true, WebPKI: true}
	unprobed := HostFacts{Name: "mx.e.test", DANE: "not_applicable"}
	tests := []struct {
		name      string
		f         Facts
		verdict   string
		protected [4]bool // passive, stripping, forged MX, forged certificate
	}{
		{"dane matching, signed MX", Facts{MXSecure: true, Hosts: []HostFacts{daneOK}}, Protected, [4]bool{true, true, true, true}},
		{"dane matching nothing", Facts{MXSecure: true, Hosts: []HostFacts{daneBad}}, Broken, [4]bool{true, true, true, true}},
		{"dane host not reached: DNS alone decides", Facts{MXSecure: true, Hosts: []HostFacts{{Name: "mx", DANE: "authenticate", Unreached: true, ProbeErr: "connect: refused"}}}, Protected, [4]bool{true, true, true, true}},
		{"dane one of two matches", Facts{MXSecure: true, Hosts: []HostFacts{daneBad, daneOK}}, Protected, [4]bool{true, true, true, true}},
		{"half-dane: unsigned MX", Facts{Hosts: []HostFacts{daneOK}}, Opportunistic, [4]bool{true, true, false, true}},
		{"encrypt-only TLSA", Facts{MXSecure: true, Hosts: []HostFacts{{Name: "mx", DANE: "encrypt_only", Probed: true, STARTTLS: true}}}, Opportunistic, [4]bool{true, true, true, false}},
		{"tlsa unreachable", Facts{MXSecure: true, Hosts: []HostFacts{{Name: "mx", DANE: "unreachable"}}}, Broken, [4]bool{false, false, false, false}},
		{"opportunistic with STARTTLS", Facts{Hosts: []HostFacts{plainTLS}}, Opportunistic, [4]bool{true, false, false, false}},
		{"one host without STARTTLS", Facts{Hosts: []HostFacts{plainTLS, noTLS}}, Opportunistic, [4]bool{false, false, false, false}},
		{"not probed", Facts{Hosts: []HostFacts{unprobed}}, Opportunistic, [4]bool{false, false, false, false}},
		{"sts enforce, webpki ok", Facts{STSEnforce: true, Hosts: []HostFacts{webpki}}, Protected, [4]bool{true, true, true, true}},
		{"sts enforce, webpki fails", Facts{STSEnforce: true, Hosts: []HostFacts{plainTLS}}, Broken, [4]bool{true, true, true, true}},
		{"sts enforce, not probed", Facts{STSEnforce: true, Hosts: []HostFacts{unprobed}}, Protected, [4]bool{true, true, true, true}},
		{"list enforce", Facts{ListEnforce: true, ListVerify: true, Hosts: []HostFacts{webpki}}, Protected, [4]bool{true, true, true, true}},
		// An entry at level encrypt names the MX hosts and requires TLS, but accepts any
		// certificate: no protection against a forged one, and no Web PKI failure to report.
		{"list enforce encrypt", Facts{ListEnforce: true, Hosts: []HostFacts{{Name: "mx.example", Probed: true, STARTTLS: true}}}, Opportunistic, [4]bool{true, true, true, false}},
		{"operator requires TLS", Facts{Hosts: []HostFacts{{Name: "mx", DANE: "not_applicable", LocalTLS: true}}}, Opportunistic, [4]bool{true, true, false, false}},
		{"every host deferred", Facts{STSEnforce: true, Hosts: []HostFacts{{Name: "mx", DANE: "not_applicable", Deferred: "MX host matches no pattern of the policy"}}}, Broken, [4]bool{true, true, true, true}},
		{"no route", Facts{RouteError: "bogus MX"}, Broken, [4]bool{false, false, false, false}},
		// A live pin requires TLS: stripping and eavesdropping are stopped, even for a
		// host the probe found without STARTTLS (delivery defers there) or did not
		// reach; a forged MX or certificate is not.
		{"pinned", Facts{Hosts: []HostFacts{{Name: "mx", DANE: "not_applicable", Probed: true, STARTTLS: true, Pinned: true}}}, Opportunistic, [4]bool{true, true, false, false}},
		{"pinned, STARTTLS gone", Facts{Hosts: []HostFacts{{Name: "mx", DANE: "not_applicable", Probed: true, Pinned: true}}}, Opportunistic, [4]bool{true, true, false, false}},
		{"pinned, not probed", Facts{Hosts: []HostFacts{{Name: "mx", DANE: "not_applicable", Pinned: true}}}, Opportunistic, [4]bool{true, true, false, false}},
		// A pin never counts for a host it does not decide.
		{"pinned at one host of two", Facts{Hosts: []HostFacts{{Name: "mx1", Probed: true, Pinned: true}, noTLS}}, Opportunistic, [4]bool{false, false, false, false}},
		// DANE beats the pin, and says so.
		{"dane and pin", Facts{MXSecure: true, Hosts: []HostFacts{daneOK}}, Protected, [4]bool{true, true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Judge(tt.f)
			if v.Verdict != tt.verdict {
				t.Errorf("verdict %s (problems %q), want %s", v.Verdict, v.Problems, tt.verdict)
			}
			if len(v.Threats) != 4 {
				t.Fatalf("%d threats, want 4", len(v.Threats))
			}
			for i, th := range v.Threats {
				if th.Protected != tt.protected[i] {
					t.Errorf("%s: protected %v (by %q, why %q), want %v", th.Threat, th.Protected, th.By, th.Why, tt.protected[i])
				}
				if th.Protected == (th.By == "") || th.Protected == (th.Why != "") {
					t.Errorf("%s: protected %v with by %q and why %q", th.Threat, th.Protected, th.By, th.Why)
				}
			}
			want := map[string]int{Protected: 0, Opportunistic: 1, Broken: 2}[tt.verdict]
			if v.ExitCode() != want {
				t.Errorf("exit %d, want %d", v.ExitCode(), want)
			}
		})
	}
}
