package dnslab

import (
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestVerdictOf(t *testing.T) {
	reply := func(rcode int, ad bool, ede ...*mdns.EDNS0_EDE) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion("www.example.test.", mdns.TypeA)
		m.Response = true
		m.Rcode = rcode
		m.AuthenticatedData = ad
		if ede != nil {
			m.SetEdns0(1232, true)
			opt := m.IsEdns0()
			for _, e := range ede {
				opt.Option = append(opt.Option, e)
			}
		}
		return m
	}
	expired := &mdns.EDNS0_EDE{InfoCode: mdns.ExtendedErrorCodeSignatureExpired, ExtraText: "signature expired"}
	missing := &mdns.EDNS0_EDE{InfoCode: mdns.ExtendedErrorCodeRRSIGsMissing}
	tests := []struct {
		name       string
		m          *mdns.Msg
		want       Status
		wantEDE    []uint16
		wantReason string
		wantErr    bool
	}{
		{"secure answer", reply(mdns.RcodeSuccess, true), Secure, nil, "", false},
		{"secure NXDOMAIN", reply(mdns.RcodeNameError, true), Secure, nil, "", false},
		{"insecure answer", reply(mdns.RcodeSuccess, false), Insecure, nil, "", false},
		{"insecure NXDOMAIN", reply(mdns.RcodeNameError, false), Insecure, nil, "", false},
		{"bogus", reply(mdns.RcodeServerFailure, false, expired, missing), Bogus,
			[]uint16{mdns.ExtendedErrorCodeSignatureExpired, mdns.ExtendedErrorCodeRRSIGsMissing}, "signature expired", false},
		{"SERVFAIL without EDE", reply(mdns.RcodeServerFailure, false), Bogus, nil, "", false},
		{"refused", reply(mdns.RcodeRefused, false), "", nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verdictOf(tc.m)
			if (err != nil) != tc.wantErr {
				t.Fatalf("verdictOf() error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if v.Status != tc.want || !slices.Equal(v.EDE, tc.wantEDE) || v.Reason != tc.wantReason || v.Rcode != tc.m.Rcode {
				t.Errorf("verdictOf() = %+v, want %s %v %q", v, tc.want, tc.wantEDE, tc.wantReason)
			}
			if v.String() == "" {
				t.Error("empty String()")
			}
		})
	}
}

func TestDNSSECFailure(t *testing.T) {
	for code, want := range map[uint16]bool{
		mdns.ExtendedErrorCodeOther:                      false,
		mdns.ExtendedErrorCodeUnsupportedDNSKEYAlgorithm: true,
		mdns.ExtendedErrorCodeDNSBogus:                   true,
		mdns.ExtendedErrorCodeSignatureExpired:           true,
		mdns.ExtendedErrorCodeNSECMissing:                true,
		mdns.ExtendedErrorCodeCachedError:                false,
		mdns.ExtendedErrorCodeNoReachableAuthority:       false,
	} {
		if got := DNSSECFailure(code); got != want {
			t.Errorf("DNSSECFailure(%d) = %v, want %v", code, got, want)
		}
	}
}
