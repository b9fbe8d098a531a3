package dane

import (
	"slices"
	"testing"
)

// TestReferenceIDs covers the cases of DANE-22 (RFC 7672 §3.2.2, §2.2.1).
func TestReferenceIDs(t *testing.T) {
	tests := []struct {
		name string
		d    Destination
		base string
		want []string
	}{
		{name: "DANE-22/secure-MX-base-and-next-hop",
			d:    Destination{NextHop: "example.test", MXSecure: true, MXHost: "mx.example.test"},
			base: "mx.example.test", want: []string{"mx.example.test", "example.test"}},
		{name: "DANE-22/secure-MX-expanded-next-hop",
			d: Destination{NextHop: "Example.Test.", NextHopExpanded: "mail.example.net", MXSecure: true,
				MXHost: "mx.example.net"},
			base: "mx-final.example.net", want: []string{"mx-final.example.net", "example.test", "mail.example.net"}},
		{name: "DANE-22/secure-MX-expanded-equal",
			d:    Destination{NextHop: "example.test", NextHopExpanded: "example.test", MXSecure: true, MXHost: "mx.example.test"},
			base: "mx.example.test", want: []string{"mx.example.test", "example.test"}},
		{name: "DANE-22/implicit-MX-base-is-expansion",
			d:    Destination{NextHop: "example.test", NextHopExpanded: "host.example.net", MXSecure: true, ImplicitMX: true},
			base: "host.example.net", want: []string{"host.example.net", "example.test"}},
		{name: "DANE-22/implicit-MX-base-is-original",
			d:    Destination{NextHop: "example.test", NextHopExpanded: "host.example.net", MXSecure: true, ImplicitMX: true},
			base: "example.test", want: []string{"example.test"}},
		{name: "DANE-22/half-DANE-MX-host-only",
			d:    Destination{NextHop: "example.test", NextHopExpanded: "example.net", MXSecure: false, MXHost: "MX.example.test."},
			base: "mx-final.example.net", want: []string{"mx.example.test"}},
		{name: "DANE-22/half-DANE-implicit-MX",
			d:    Destination{NextHop: "example.test", MXSecure: false, ImplicitMX: true},
			base: "example.test", want: []string{"example.test"}},
		{name: "DANE-22/half-DANE-no-MX-host-given",
			d:    Destination{NextHop: "example.test"},
			base: "mx.example.test", want: []string{"mx.example.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReferenceIDs(tt.d, tt.base); !slices.Equal(got, tt.want) {
				t.Errorf("ReferenceIDs = %q, want %q", got, tt.want)
			}
		})
	}
}
