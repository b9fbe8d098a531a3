package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/lab"
)

// TestLabMatrix runs the lab as `mxward lab` does and checks the facts its matrix must
// show. Every cell comes from a real delivery through the delivery engine; the test
// reads the cells, never a table of expected outcomes built into the command.
func TestLabMatrix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := runLab(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := len(rep.Senders) * len(rep.Destinations) * len(rep.Attacks)
	if len(rep.Cells) != want {
		t.Fatalf("%d cells, want %d", len(rep.Cells), want)
	}
	for _, c := range rep.Cells {
		if c.Result == "" {
			t.Errorf("%s/%s/%s: no attempt recorded", c.Destination, c.Attack, c.Sender)
		}
	}
	cell := func(sender, dest, attack string) labCell {
		t.Helper()
		c := rep.cell(sender, dest, attack)
		if c == nil {
			t.Fatalf("no cell %s/%s/%s", dest, attack, sender)
		}
		return *c
	}
	// safeDeferral: the message waits in the queue and the attacker has nothing.
	safeDeferral := func(c labCell, why string) {
		t.Helper()
		if !c.Deferred || c.RightHost || c.AttackerHost || c.AttackerRead {
			t.Errorf("%s/%s/%s (%s): want deferred with nothing delivered or read, got %s: %s",
				c.Destination, c.Attack, c.Sender, why, c.Outcome, c.Explain)
		}
	}

	// Without an attacker, every sender reaches every destination whose certificate it
	// can accept, and nobody reads anything.
	for _, d := range rep.Destinations {
		for _, s := range rep.Senders {
			c := cell(s.Name, d.Kind, "none")
			if c.AttackerRead || c.AttackerHost {
				t.Errorf("no attack, %s/%s: the attacker got the message: %s", d.Kind, s.Name, c.Explain)
			}
			if s.Name != "verify-mx-name" && (!c.RightHost || c.Result != "delivered") {
				t.Errorf("no attack, %s/%s: not delivered: %s", d.Kind, s.Name, c.Explain)
			}
		}
	}

	// Plain opportunistic STARTTLS loses to stripping: the message goes in clear to the
	// right host and the attacker on the path reads it (RFC 3207 §6).
	for _, d := range rep.Destinations {
		c := cell("opportunistic", d.Kind, "strip-starttls")
		if !c.RightHost || !c.ReadOnPath || c.Fields["tls"] != "none" {
			t.Errorf("opportunistic under stripping to %s: want delivered in clear and read, got %s: %s", d.Kind, c.Outcome, c.Explain)
		}
	}

	// Verifying the certificate against the MX name loses to a forged MX: the attacker's
	// host has a CA-valid certificate for its own name, which is the forged MX name.
	for _, d := range rep.Destinations {
		c := cell("verify-mx-name", d.Kind, "forge-mx")
		if !c.AttackerHost || c.Fields["mx"] != lab.AttackerHost() {
			t.Errorf("verify-mx-name under a forged MX to %s: want delivered to the attacker, got %s: %s", d.Kind, c.Outcome, c.Explain)
		}
	}

	// DANE defers under stripping and a forged MX wherever the destination publishes
	// TLSA in a signed zone (DANE-02, DANE-20); MTA-STS wherever it publishes a policy
	// (STS-22); mxward's default wherever either applies.
	for _, tt := range []struct {
		sender string
		dests  []string
	}{
		{"dane", []string{"all", "dane"}},
		{"mta-sts", []string{"all", "mta-sts"}},
		{"mxward-default", []string{"all", "dane", "mta-sts"}},
	} {
		for _, dest := range tt.dests {
			for _, attack := range []string{"strip-starttls", "forge-mx", "forge-signed"} {
				safeDeferral(cell(tt.sender, dest, attack), "the destination's protection")
			}
		}
	}

	// Forged answers for a signed zone are bogus, and a validating sender defers them
	// whatever its TLS level (DNSSEC-08; §14.7: never bounce, never deliver).
	for _, s := range []string{"dane", "mxward-default"} {
		for _, dest := range []string{"all", "dane"} {
			for _, attack := range []string{"forge-mx", "forge-signed"} {
				c := cell(s, dest, attack)
				safeDeferral(c, "bogus DNS")
				if !strings.Contains(c.Reply+" "+c.Fields["reason"], "bogus") {
					t.Errorf("%s/%s/%s: deferred, but not as bogus DNS: %q [%s]", dest, attack, s, c.Reply, c.Fields["reason"])
				}
			}
		}
	}
	// The same forgeries pass a sender that does not validate: the lab's forging is real.
	if c := cell("opportunistic", "all", "forge-signed"); !c.AttackerHost {
		t.Errorf("a non-validating sender was not fooled by the forged address: %s", c.Explain)
	}

	// Passive observation reads nothing wherever TLS was used, and reads what went in
	// clear: the tap is shown to work by the stripping rows above.
	for _, c := range rep.Cells {
		if tls := c.Fields["tls"]; tls != "" && tls != "none" && c.ReadOnPath {
			t.Errorf("%s/%s/%s: read on the path although tls=%s", c.Destination, c.Attack, c.Sender, tls)
		}
	}
	for _, c := range rep.Cells {
		if c.Attack == "passive" && c.AttackerRead {
			t.Errorf("%s/passive/%s: the passive attacker read the message: %s", c.Destination, c.Sender, c.Explain)
		}
	}

	// DANE has no first-contact gap: the denial of the MTA-STS record is bogus in a
	// signed zone, and the forged MX is refused (DANE-03).
	for _, s := range []string{"dane", "mxward-default"} {
		for _, dest := range []string{"all", "dane"} {
			safeDeferral(cell(s, dest, "first-contact"), "DANE on first contact")
		}
	}
	// MTA-STS has one (RFC 8461 §10): an attacker present before the sender ever fetched
	// the policy hides it, and the forged MX wins. The lab shows it rather than hide it.
	for _, s := range []string{"mta-sts", "mxward-default"} {
		if c := cell(s, "mta-sts", "first-contact"); !c.AttackerHost {
			t.Errorf("%s on first contact with an MTA-STS-only domain: want the known gap (delivered to the attacker), got %s: %s", s, c.Outcome, c.Explain)
		}
	}

	// A static policy list entry closes the gap (LIST-06: consulted when MTA-STS says
	// nothing).
	safeDeferral(cell("mxward-list", "mta-sts", "first-contact"), "the policy list on first contact")
	for _, c := range rep.Cells {
		if c.Sender == "mxward-list" && c.Destination != "none" && c.AttackerRead {
			t.Errorf("mxward-list, %s/%s: the attacker got the message: %s", c.Destination, c.Attack, c.Explain)
		}
	}

	// A pin, learnt from an earlier delivery over TLS, makes stripping defer even for a
	// destination that publishes nothing (docs/pinning.md); it does nothing against a
	// forged MX, whose host offers STARTTLS too. The same earlier delivery cached the
	// MTA-STS policy, so first contact is no longer first.
	safeDeferral(cell("mxward-pinned", "none", "strip-starttls"), "the pin")
	if c := cell("mxward-pinned", "none", "strip-starttls"); c.Fields["policy"] != "pin" {
		t.Errorf("none/strip-starttls/mxward-pinned deferred by policy %q, want pin: %s", c.Fields["policy"], c.Explain)
	}
	if c := cell("mxward-pinned", "none", "forge-mx"); !c.AttackerHost {
		t.Errorf("a pin stopped a forged MX, which it cannot: %s", c.Explain)
	}
	safeDeferral(cell("mxward-pinned", "mta-sts", "first-contact"), "the cached MTA-STS policy")

	// Apart from that gap, mxward's default never hands a protected destination's mail
	// to the attacker.
	for _, c := range rep.Cells {
		if c.Sender == "mxward-default" && c.Destination != "none" && c.AttackerRead &&
			!(c.Destination == "mta-sts" && c.Attack == "first-contact") {
			t.Errorf("mxward-default, %s/%s: the attacker got the message: %s", c.Destination, c.Attack, c.Explain)
		}
	}
	if t.Failed() || testing.Verbose() {
		var b strings.Builder
		writeLabText(&b, rep)
		t.Log("\n" + b.String())
	}
}

// TestLabCommand runs the binary as a new user would: text, --json and --html.
func TestLabCommand(t *testing.T) {
	html := filepath.Join(t.TempDir(), "lab.html")
	start := time.Now()
	out, code := runMxward(t, "lab", "--json", "--html", html)
	if code != 0 {
		t.Fatalf("mxward lab --json: exit %d\n%s", code, out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("mxward lab took %v; it must stay well under 30 s", d)
	}
	var rep struct {
		Cells []struct {
			Sender, Destination, Attack, Outcome, Explain string
			AttackerRead                                  bool `json:"attacker_read"`
		} `json:"cells"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("lab --json: %v\n%s", err, out)
	}
	if len(rep.Cells) != 7*4*6 {
		t.Errorf("%d cells, want %d", len(rep.Cells), 7*4*6)
	}
	for _, c := range rep.Cells {
		if c.Outcome == "" || c.Explain == "" {
			t.Errorf("cell without outcome or explanation: %+v", c)
		}
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!DOCTYPE html>", "mxward lab report", `class="read"`, `class="deferred"`, "strip-starttls", "Why, cell by cell"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	text, code := runMxward(t, "lab")
	if code != 0 || !strings.Contains(text, "Destination \"all\"") || !strings.Contains(text, "READ") {
		t.Errorf("mxward lab: exit %d\n%s", code, text)
	}
	if _, code := runMxward(t, "lab", "extra"); code != 64 {
		t.Errorf("mxward lab extra: exit %d, want 64", code)
	}
}
