package config

import (
	"strings"
	"testing"
)

func TestDeliveryValidation(t *testing.T) {
	tests := []struct{ body, want string }{
		{"[delivery]\ntls_level = \"maybe\"\n", "x.toml:2: delivery.tls_level:"},
		{"[delivery]\ntls_level = \"secure match=x\"\n", "x.toml:2: delivery.tls_level:"},
		{"[delivery]\nretry_first = \"2h\"\nretry_max = \"1h\"\n", "x.toml:3: delivery.retry_max: must not be shorter"},
		{"[delivery]\naddress_preference = \"ipv5\"\n", "x.toml:2: delivery.address_preference:"},
		{"[dns]\nresolvers = [\"resolver.example\"]\n", "x.toml:2: dns.resolvers[0]:"},
		{"[dns]\nresolvers = [\"127.0.0.1:0\"]\n", "dns.resolvers[0]: \"127.0.0.1:0\": port 0"},
		{"[dns]\nmode = \"trust\"\n", "x.toml:2: dns.mode:"},
		{"[dns]\nmode = \"trust-ad\"\nresolvers = [\"192.0.2.1\"]\ntrusted_resolvers = [\"192.0.2.2\"]\n", "dns.trusted_resolvers[0]: \"192.0.2.2\" is not one of dns.resolvers"},
		{"[dns]\nresolvers = [\"192.0.2.1\"]\ntrusted_resolvers = [\"192.0.2.1:53\"]\n", "dns.trusted_resolvers[0]: only used with dns.mode = \"trust-ad\""},
		{"[delivery]\nsmarthost_user = \"u\"\n", "delivery.smarthost_user: smarthost_user and smarthost_password_file go together"},
		{"[delivery.tls_policy]\n\"example.com\" = \"secure\"\n\"bad..example\" = \"may\"\n", "x.toml:3: delivery.tls_policy.\"bad..example\":"},
		{"[delivery.tls_policy]\n\"example.com\" = \"fingerprint match=zz\"\n", "x.toml:2: delivery.tls_policy.\"example.com\": match \"zz\" is not a SHA-256 digest"},
		{"[delivery]\ndane_digests = \"sha1\"\n", "x.toml:2: delivery.dane_digests:"},
		{"[delivery]\nmax_connections = 0\n", "x.toml:2: delivery.max_connections: must be between 1"},
	}
	for _, tt := range tests {
		_, err := Parse("x.toml", []byte(tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error %v, want %q", tt.body, err, tt.want)
		}
	}
	c, err := Parse("x.toml", []byte("[delivery.tls_policy]\n\"Example.COM\" = \"secure match=.example.com\"\n\".example.net\" = \"encrypt\"\n[delivery.transport]\n\"partner.example\" = \"[127.0.0.1]:2525\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Delivery.TLSPolicy["example.com"] != "secure match=.example.com" || c.Delivery.TLSPolicy[".example.net"] != "encrypt" ||
		c.Delivery.Transport["partner.example"] != "[127.0.0.1]:2525" || c.Delivery.TLSLevel != "dane" {
		t.Errorf("delivery: %+v", c.Delivery)
	}
}

func TestDNSConfig(t *testing.T) {
	c, err := Parse("x.toml", []byte("[dns]\nmode = \"trust-ad\"\nresolvers = [\"192.0.2.1\", \"[2001:db8::1]:5353\"]\ntrusted_resolvers = [\"192.0.2.1:53\"]\ntrust_anchor_file = \"/etc/mxward/anchors\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DNS.Mode != DNSTrustAD || len(c.DNS.Resolvers) != 2 || c.DNS.TrustAnchorFile != "/etc/mxward/anchors" {
		t.Errorf("dns: %+v", c.DNS)
	}
	if d := Default(); d.DNS.Mode != DNSValidate || len(d.DNS.Resolvers) != 0 || d.DNS.TrustAnchorFile != "" {
		t.Errorf("default dns: %+v", d.DNS)
	}
}
