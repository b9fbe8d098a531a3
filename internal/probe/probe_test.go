package probe

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"mxward/internal/dns"
	"mxward/internal/dnssec"
	"mxward/internal/lab"
	"mxward/internal/mtasts"
)

// labResolver is a client of the lab's DNS validating in-process, as delivery does.
func labResolver(t *testing.T, in *lab.Internet) *dns.Client {
	t.Helper()
	v, err := dnssec.New(dnssec.Config{Anchors: in.Anchors()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := dns.NewClient(dns.Config{Servers: []string{in.DNSAddr()}, Validator: v, CacheSize: -1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

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
	res := labResolver(t, in)
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

// A probe that cannot reach an MX host — a refused connection, or a network that
// accepts port 25 connections and never greets, as some block outgoing mail — says
// nothing about the host: a DANE domain must not be judged broken for it, and the
// report says the verdict rests on DNS alone. A reachable host with a TLSA record
// matching nothing is still broken.
func TestCheckUnreachedHost(t *testing.T) {
	dane := lab.Zone{Name: "dane.lab", Signed: true, MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertSelfSigned, TLSA: lab.TLSAMatch}}}
	wrong := lab.Zone{Name: "wrong.lab", Signed: true, MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertSelfSigned, TLSA: lab.TLSAWrong}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: []lab.Zone{dane, wrong}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	res := labResolver(t, in)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never greeting, until the test ends
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	to := func(addr string) func(context.Context, string, string) (net.Conn, error) {
		return func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	for _, tc := range []struct {
		name, domain string
		dial         func(context.Context, string, string) (net.Conn, error)
		reached      bool
		verdict      string
	}{
		{"reached, matching", "dane.lab", nil, true, Protected},
		{"reached, matching nothing", "wrong.lab", nil, true, Broken},
		{"connection refused", "wrong.lab", to(closedAddr), false, Protected},
		{"never greets", "wrong.lab", to(silent.Addr().String()), false, Protected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Check(ctx, Options{Domain: tc.domain, Resolver: res, Connect: true, Port: in.SMTPPort,
				Dial: tc.dial, Hostname: "sender.test", Timeout: 500 * time.Millisecond})
			if len(rep.Hosts) != 1 || rep.Hosts[0].Probe == nil {
				t.Fatalf("hosts %+v", rep.Hosts)
			}
			p := rep.Hosts[0].Probe
			if p.Reached != tc.reached {
				t.Errorf("reached %v, want %v (%s)", p.Reached, tc.reached, p.Error)
			}
			if rep.Verdict.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s; problems %q", rep.Verdict.Verdict, tc.verdict, rep.Problems)
			}
			if noted := len(rep.Notes) > 0 && strings.Contains(rep.Notes[0], "not reached"); noted == tc.reached {
				t.Errorf("notes %q; reached %v", rep.Notes, tc.reached)
			}
		})
	}
}

// When a host's first address cannot be reached (no route for its family, say), the
// probe tries the next one and judges the host by the address that answered.
func TestCheckNextAddress(t *testing.T) {
	z := lab.Zone{Name: "two.lab", Signed: true, Records: []string{"mx A 127.0.1.250"},
		MX: []lab.MXHost{{Name: "mx", Pref: 10, Cert: lab.CertSelfSigned, TLSA: lab.TLSAMatch}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: []lab.Zone{z}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	real, _ := in.Addr("mx.two.lab")
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		if len(dialed) == 1 {
			return nil, errors.New("network is unreachable")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, real.String())
	}
	rep := Check(ctx, Options{Domain: "two.lab", Resolver: labResolver(t, in), Connect: true, Port: in.SMTPPort,
		Dial: dial, Hostname: "sender.test", Timeout: 2 * time.Second})
	if len(rep.Hosts) != 1 || len(rep.Hosts[0].Addrs) != 2 {
		t.Fatalf("hosts %+v, want one with two addresses", rep.Hosts)
	}
	p := rep.Hosts[0].Probe
	if len(dialed) != 2 || p == nil || !p.Reached || !p.DANEMatch || p.Addr != dialed[1] {
		t.Fatalf("dialed %q, probe %+v: want the second address probed and matched", dialed, p)
	}
	if rep.Verdict.Verdict != Protected || len(rep.Notes) != 0 {
		t.Errorf("verdict %s, notes %q", rep.Verdict.Verdict, rep.Notes)
	}
}
