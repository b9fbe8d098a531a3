package probe

import (
	"context"
	"testing"
	"time"

	"mxward/internal/dns"
	"mxward/internal/dnssec"
	"mxward/internal/lab"
	"mxward/internal/mtasts"
)

// Check over the lab internet with an injected MTA-STS lookup: receivers with lab-CA
// and self-signed certificates, the lab CA as the Web PKI roots.
func TestCheckMTASTS(t *testing.T) {
	ca := lab.Zone{Name: "ca.lab", Signed: false}
	ca.AddMX("mx", 10, lab.CertCA)
	self := lab.Zone{Name: "self.lab", Signed: false}
	self.AddMX("mx", 10, lab.CertSelfSigned)
	none := lab.Zone{Name: "none.lab", Signed: false}
	none.AddMX("mx", 10, lab.CertNone)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: []lab.Zone{ca, self, none}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	v, err := dnssec.New(dnssec.Config{Anchors: in.Anchors()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := dns.NewClient(dns.Config{Servers: []string{in.DNSAddr()}, Validator: v, CacheSize: -1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	enforce := func(mx string) func(context.Context, string) (mtasts.Result, error) {
		return func(context.Context, string) (mtasts.Result, error) {
			return mtasts.Result{Policy: &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeEnforce, MX: []string{mx}, MaxAge: time.Hour},
				Source: mtasts.SourceLive, ID: "1", Reason: "test policy"}, nil
		}
	}
	for _, tc := range []struct {
		name    string
		domain  string
		sts     func(context.Context, string) (mtasts.Result, error)
		connect bool
		verdict string
		webpki  bool
	}{
		{"enforce, lab-CA certificate", "ca.lab", enforce("mx.ca.lab"), true, Protected, true},
		{"enforce, not probed", "ca.lab", enforce("mx.ca.lab"), false, Protected, false},
		{"enforce, self-signed", "self.lab", enforce("mx.self.lab"), true, Broken, false},
		{"enforce, MX outside the policy", "ca.lab", enforce("mx.other.lab"), true, Broken, true},
		{"no policy, STARTTLS offered", "ca.lab", nil, true, Opportunistic, true},
		{"no policy, no STARTTLS", "none.lab", nil, true, Opportunistic, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Check(ctx, Options{Domain: tc.domain, Resolver: res, MTASTS: tc.sts, Roots: in.CAPool(),
				Connect: tc.connect, Port: in.SMTPPort, Hostname: "sender.test", Timeout: 5 * time.Second})
			if rep.Verdict.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s; problems %q; report %+v", rep.Verdict.Verdict, tc.verdict, rep.Problems, rep)
			}
			if len(rep.Hosts) != 1 {
				t.Fatalf("%d hosts, want 1: %+v", len(rep.Hosts), rep)
			}
			p := rep.Hosts[0].Probe
			if !tc.connect {
				if p != nil {
					t.Errorf("probed without Connect: %+v", p)
				}
				return
			}
			if p == nil {
				t.Fatal("no probe")
			}
			if p.WebPKIOK != tc.webpki {
				t.Errorf("webpki %v (%s), want %v", p.WebPKIOK, p.WebPKI, tc.webpki)
			}
			if tc.domain == "none.lab" && (p.STARTTLS || p.Error == "") {
				t.Errorf("no STARTTLS expected, got %+v", p)
			}
		})
	}
}
