package probe

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mxward/internal/lab"
	"mxward/internal/pin"
)

// Check with a pin store: the report shows the pin's state and entry, the host's
// decision is the pin's (when nothing stronger applies), and the verdict counts a live
// pin against STARTTLS stripping and eavesdropping only.
func TestCheckPinning(t *testing.T) {
	plain := lab.Zone{Name: "plain.lab", Signed: false}
	plain.AddMX("mx", 10, lab.CertSelfSigned)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	in, err := lab.Start(ctx, lab.Options{Zones: []lab.Zone{plain}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	res := labResolver(t, in)
	now := time.Now()
	entry := pin.Entry{Domain: "plain.lab", FirstSeen: now.Add(-48 * time.Hour), LastSeen: now.Add(-time.Hour), Count: 4, Counted: 2,
		LastCounted: now.Add(-time.Hour), Pinned: now.Add(-24 * time.Hour), Expires: now.Add(24 * time.Hour),
		MXHosts: []string{"mx.plain.lab"}, TLSVersions: []string{"TLSv1.3"}}
	observed := entry
	observed.Pinned = time.Time{}
	expired := entry
	expired.Expires = now.Add(-time.Minute)
	lookup := func(e pin.Entry, err error) func(string, time.Time) (pin.Entry, bool, error) {
		return func(d string, at time.Time) (pin.Entry, bool, error) {
			if d != "plain.lab" {
				t.Errorf("pin looked up for %q", d)
			}
			return e, err == nil && e.Live(at), err
		}
	}
	for _, tc := range []struct {
		name     string
		pins     func(string, time.Time) (pin.Entry, bool, error)
		enabled  bool
		state    string
		entry    bool
		source   string
		stripped bool // the verdict counts STARTTLS stripping as stopped
	}{
		{"pinning off", nil, false, "none", false, "opportunistic", false},
		{"no entry", lookup(pin.Entry{}, nil), true, "none", false, "opportunistic", false},
		{"observed", lookup(observed, nil), true, "observed", true, "opportunistic", false},
		{"pinned", lookup(entry, nil), true, "pinned", true, "pin", true},
		{"expired", lookup(expired, nil), true, "none", true, "opportunistic", false},
		{"store unreadable", lookup(pin.Entry{}, errors.New("permission denied")), true, "none", false, "opportunistic", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := Check(ctx, Options{Domain: "plain.lab", Resolver: res, Pins: tc.pins, Connect: true, Port: in.SMTPPort,
				Hostname: "sender.test", Timeout: 5 * time.Second})
			p := rep.Pinning
			if p.Enabled != tc.enabled || p.State != tc.state || (p.Entry != nil) != tc.entry {
				t.Errorf("pinning %+v; want enabled %v state %s entry %v", p, tc.enabled, tc.state, tc.entry)
			}
			if tc.name == "store unreadable" && !strings.Contains(p.Error, "permission denied") {
				t.Errorf("error %q", p.Error)
			}
			if len(rep.Hosts) != 1 {
				t.Fatalf("%d hosts", len(rep.Hosts))
			}
			if d := rep.Hosts[0].Decision; d.Source != tc.source || (tc.source == "pin" && (d.Level != "encrypt" || !strings.Contains(d.Reason, "pinned: STARTTLS completed 4 times"))) {
				t.Errorf("decision %+v, want source %s", d, tc.source)
			}
			if rep.Verdict.Verdict != Opportunistic {
				t.Errorf("verdict %s: a pin never protects against a forged MX or certificate", rep.Verdict.Verdict)
			}
			strip := rep.Threats[1]
			if strip.Threat != ThreatStripping || strip.Protected != tc.stripped || (tc.stripped && !strings.Contains(strip.By, "TLS pin")) {
				t.Errorf("stripping %+v, want protected %v by the pin", strip, tc.stripped)
			}
		})
	}
}
