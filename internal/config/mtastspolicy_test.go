package config

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"mxward/internal/mtasts"
)

const stsBase = "hostname = \"mx.example.test\"\n[local]\ndomains = [\"example.test\"]\n"

func TestMTASTSPolicyDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(stsBase))
	if err != nil {
		t.Fatal(err)
	}
	p := c.MTASTSPolicy
	if p.Listen != "" || p.Mode != mtasts.ModeTesting || time.Duration(p.MaxAge) != 7*24*time.Hour || len(p.MX) != 0 || len(p.Certificates) != 0 {
		t.Errorf("defaults: %+v", p)
	}
	pub, err := c.MTASTSPublication()
	if err != nil {
		t.Fatal(err)
	}
	// The policy and id dns-records printed before the table existed: an upgrade
	// must not change a published id.
	const legacy = "version: STSv1\r\nmode: testing\r\nmx: mx.example.test\r\nmax_age: 604800\r\n"
	sum := sha256.Sum256([]byte(legacy))
	if pub.Text != legacy || pub.ID != hex.EncodeToString(sum[:8]) {
		t.Errorf("default publication %q id %s", pub.Text, pub.ID)
	}
}

func TestMTASTSPolicyValues(t *testing.T) {
	c, err := Parse("t.toml", []byte(stsBase+`
[mta_sts_policy]
listen = "[::]:443"
mode = "enforce"
max_age = "365d"
mx = ["MX.example.test", "*.Backup.example.test"]
[[mta_sts_policy.certificate]]
cert_file = "/etc/ssl/mta-sts.pem"
key_file = "/etc/ssl/mta-sts.key"
[[mta_sts_policy.certificate]]
cert_file = "/etc/ssl/other.pem"
key_file = "/etc/ssl/other.key"
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.MTASTSPolicy
	if p.Listen != "[::]:443" || p.Mode != mtasts.ModeEnforce || time.Duration(p.MaxAge) != 365*24*time.Hour ||
		!slices.Equal(p.MX, []string{"mx.example.test", "*.backup.example.test"}) ||
		!slices.Equal(p.Certificates, []PolicyCertificate{{"/etc/ssl/mta-sts.pem", "/etc/ssl/mta-sts.key"}, {"/etc/ssl/other.pem", "/etc/ssl/other.key"}}) {
		t.Errorf("values: %+v", p)
	}
	pub, err := c.MTASTSPublication()
	if err != nil {
		t.Fatal(err)
	}
	if want := "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmx: *.backup.example.test\r\nmax_age: 31536000\r\n"; pub.Text != want {
		t.Errorf("text %q, want %q", pub.Text, want)
	}
}

// Each rule of validateMTASTSPolicy has a case that breaks it, with the exact
// file:line: key: message an operator sees.
func TestMTASTSPolicyErrors(t *testing.T) {
	cert := "[[mta_sts_policy.certificate]]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
	tests := []struct {
		name, src, want string
	}{
		{"unknown mode", "[mta_sts_policy]\nmode = \"strict\"\n",
			`t.toml:5: mta_sts_policy.mode: "strict" is not a policy mode (enforce, testing or none)`},
		{"mode is case-sensitive", "[mta_sts_policy]\nmode = \"Enforce\"\n",
			`t.toml:5: mta_sts_policy.mode: "Enforce" is not a policy mode`},
		{"max_age above RFC 8461 §3.2", "[mta_sts_policy]\nmax_age = \"366d\"\n",
			`t.toml:5: mta_sts_policy.max_age: must be between 1s and 8766h0m0s (31557600 seconds, RFC 8461 §3.2), not 8784h0m0s`},
		{"max_age one second above", "[mta_sts_policy]\nmax_age = \"31557601s\"\n", `mta_sts_policy.max_age: must be between`},
		{"max_age zero", "[mta_sts_policy]\nmax_age = \"0s\"\n", `mta_sts_policy.max_age: must be between 1s`},
		{"max_age fraction", "[mta_sts_policy]\nmax_age = \"1.5s\"\n",
			`t.toml:5: mta_sts_policy.max_age: 1.5s is not a whole number of seconds`},
		{"max_age not a duration", "[mta_sts_policy]\nmax_age = 604800\n", `mta_sts_policy.max_age: must be a string`},
		{"STS-17 inner wildcard", "[mta_sts_policy]\nmx = [\"mx.example.test\", \"mx.*.example.test\"]\n",
			`t.toml:5: mta_sts_policy.mx[1]: invalid mx pattern "mx.*.example.test": a wildcard may only be the whole left-most label`},
		{"partial-label wildcard", "[mta_sts_policy]\nmx = [\"mx*.example.test\"]\n", `mta_sts_policy.mx[0]: invalid mx pattern "mx*.example.test"`},
		{"trailing dot", "[mta_sts_policy]\nmx = [\"mx.example.test.\"]\n", `mta_sts_policy.mx[0]: invalid mx pattern "mx.example.test.": no trailing dot`},
		{"U-label", "[mta_sts_policy]\nmx = [\"mx.bücher.example\"]\n", `A-labels`},
		{"duplicate pattern", "[mta_sts_policy]\nmx = [\"mx.example.test\", \"MX.example.test\"]\n",
			`t.toml:5: mta_sts_policy.mx[1]: "MX.example.test" is already mx[0]`},
		{"enforce without this host", "[mta_sts_policy]\nmode = \"enforce\"\nmx = [\"mx2.example.test\"]\n",
			`t.toml:6: mta_sts_policy.mx: no pattern matches hostname "mx.example.test": in mode enforce senders would refuse to deliver to this host`},
		{"enforce with a wildcard two labels up", "[mta_sts_policy]\nmode = \"enforce\"\nmx = [\"*.test\"]\n",
			`mta_sts_policy.mx: no pattern matches hostname`},
		{"certificate without key", "[[mta_sts_policy.certificate]]\ncert_file = \"c.pem\"\n",
			`t.toml:4: mta_sts_policy.certificate[0].key_file: is required`},
		{"certificate without cert", "[[mta_sts_policy.certificate]]\nkey_file = \"k.pem\"\n",
			`t.toml:4: mta_sts_policy.certificate[0].cert_file: is required`},
		{"certificate twice", cert + cert,
			`t.toml:8: mta_sts_policy.certificate[1].cert_file: "c.pem" is already certificate[0] (line 4)`},
		{"listen without certificate", "[mta_sts_policy]\nlisten = \"127.0.0.1:8443\"\n",
			`t.toml:5: mta_sts_policy.listen: set without a certificate`},
		{"listen not host:port", "[mta_sts_policy]\nlisten = \"443\"\n" + cert,
			`t.toml:5: mta_sts_policy.listen: "443": not a host:port address`},
		{"listen on an SMTP listener", "[[listener]]\nname = \"in\"\naddress = \"127.0.0.1:2525\"\nrole = \"inbound\"\n[mta_sts_policy]\nlisten = \"127.0.0.1:2525\"\n" + cert,
			`t.toml:9: mta_sts_policy.listen: "127.0.0.1:2525" is already the address of listener[0] (line 4)`},
		{"listen on the admin address", "[mta_sts_policy]\nlisten = \"127.0.0.1:9425\"\n" + cert,
			`t.toml:5: mta_sts_policy.listen: "127.0.0.1:9425" is already admin.address`},
		{"unknown key", "[mta_sts_policy]\nmax-age = \"1d\"\n", `t.toml:5: mta_sts_policy.max-age: unknown key (did you mean "max_age"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(stsBase+tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v\nwant %q", err, tt.want)
			}
		})
	}

	// Without local domains there is nothing to serve.
	_, err := Parse("t.toml", []byte("[mta_sts_policy]\nlisten = \"127.0.0.1:8443\"\n"+cert))
	if want := "t.toml:2: mta_sts_policy.listen: set but local.domains is empty"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("no local domains: %v, want %q", err, want)
	}
}

func TestMTASTSPolicyAccepted(t *testing.T) {
	for name, src := range map[string]string{
		"certificates kept while the listener is off": "[[mta_sts_policy.certificate]]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
		"mode none without mx":                        "[mta_sts_policy]\nmode = \"none\"\n",
		"enforce with the default mx":                 "[mta_sts_policy]\nmode = \"enforce\"\n",
		"enforce with a wildcard for this host":       "[mta_sts_policy]\nmode = \"enforce\"\nmx = [\"*.example.test\"]\n",
		"max_age exactly the RFC maximum":             "[mta_sts_policy]\nmax_age = \"31557600s\"\n",
		"listen on port 0 like a listener":            "[[listener]]\nname = \"in\"\naddress = \"127.0.0.1:0\"\nrole = \"inbound\"\n[mta_sts_policy]\nlisten = \"127.0.0.1:0\"\n[[mta_sts_policy.certificate]]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
	} {
		if _, err := Parse("t.toml", []byte(stsBase+src)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzMTASTSPolicy: every [mta_sts_policy] table the validation accepts gives a policy
// that can be published and that senders' strict parser reads back unchanged, so
// `mxward config check` passing means the served policy is valid (STS-11, STS-12).
func FuzzMTASTSPolicy(f *testing.F) {
	f.Add("mode = \"enforce\"\nmx = [\"mx.example.test\", \"*.example.net\"]\nmax_age = \"365d\"\n")
	f.Add("mode = \"none\"\nmax_age = \"1s\"\n")
	f.Add("mode = \"testing\"\nmx = [\"a.*.b\"]\n")
	f.Add("max_age = \"31557600s\"\nmx = [\"MX.Example.Test\"]\n")
	f.Add("listen = \"127.0.0.1:443\"\n[[mta_sts_policy.certificate]]\ncert_file = \"c\"\nkey_file = \"k\"\n")
	f.Fuzz(func(t *testing.T, table string) {
		c, err := Parse("t.toml", []byte(stsBase+"[mta_sts_policy]\n"+table))
		if err != nil {
			return
		}
		pub, err := c.MTASTSPublication()
		if err != nil {
			t.Fatalf("accepted table %q cannot be published: %v", table, err)
		}
		p, err := mtasts.ParsePolicy([]byte(pub.Text))
		if err != nil {
			t.Fatalf("published policy %q does not parse: %v", pub.Text, err)
		}
		if p.Mode != c.MTASTSPolicy.Mode || p.MaxAge != time.Duration(c.MTASTSPolicy.MaxAge) {
			t.Fatalf("policy %+v from %+v", p, c.MTASTSPolicy)
		}
		if p.Mode == mtasts.ModeEnforce && !p.Matches(c.Hostname) {
			t.Fatalf("enforce policy %q does not list the host name", pub.Text)
		}
	})
}
