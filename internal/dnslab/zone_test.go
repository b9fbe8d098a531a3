package dnslab

import (
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestZoneWithDefaults(t *testing.T) {
	tests := []struct {
		name    string
		zone    Zone
		want    Zone   // checked when wantErr is ""
		wantErr string // substring
	}{
		{"defaults", Zone{Name: "Example.TEST"},
			Zone{Name: "example.test.", Signer: LDNS, Algorithm: 13, Denial: NSEC}, ""},
		{"root", Zone{Name: ".", Signer: BIND, Algorithm: 8},
			Zone{Name: ".", Signer: BIND, Algorithm: 8, Denial: NSEC}, ""},
		{"unsigned", Zone{Name: "u.test.", Unsigned: true, Records: []string{"www A 192.0.2.1"}},
			Zone{Name: "u.test.", Unsigned: true, Records: []string{"www A 192.0.2.1"}}, ""},
		{"nsec3 salt folded", Zone{Name: "n.test.", Denial: NSEC3, Salt: "ABCD", Iterations: 5},
			Zone{Name: "n.test.", Signer: LDNS, Algorithm: 13, Denial: NSEC3, Salt: "abcd", Iterations: 5}, ""},
		{"ldns allows 200 iterations", Zone{Name: "n.test.", Denial: NSEC3, Iterations: 200},
			Zone{Name: "n.test.", Signer: LDNS, Algorithm: 13, Denial: NSEC3, Iterations: 200}, ""},

		{"bad label", Zone{Name: "a b.test."}, Zone{}, "label"},
		{"slash in name", Zone{Name: "a/b.test."}, Zone{}, "label"},
		{"unsigned with signer", Zone{Name: "u.test.", Unsigned: true, Signer: BIND}, Zone{}, "unsigned, but"},
		{"unsigned with damage", Zone{Name: "u.test.", Unsigned: true, Break: Break{WrongDS: true}}, Zone{}, "unsigned, but"},
		{"unknown signer", Zone{Name: "a.test.", Signer: "knot"}, Zone{}, "signer"},
		{"algorithm 5", Zone{Name: "a.test.", Algorithm: 5}, Zone{}, "algorithm 5"},
		{"iterations on NSEC", Zone{Name: "a.test.", Iterations: 1}, Zone{}, "NSEC zone"},
		{"bind above 150", Zone{Name: "a.test.", Signer: BIND, Denial: NSEC3, Iterations: 151}, Zone{}, "at most 150"},
		{"negative iterations", Zone{Name: "a.test.", Denial: NSEC3, Iterations: -1}, Zone{}, "out of range"},
		{"odd salt", Zone{Name: "a.test.", Denial: NSEC3, Salt: "abc"}, Zone{}, "salt"},
		{"unknown denial", Zone{Name: "a.test.", Denial: "nsec5"}, Zone{}, "denial"},
		{"bad record", Zone{Name: "a.test.", Records: []string{"www A not-an-address"}}, Zone{}, "parse records"},
		{"record with newline", Zone{Name: "a.test.", Records: []string{"www A 192.0.2.1\nx A 192.0.2.2"}}, Zone{}, "spans lines"},
		{"own SOA", Zone{Name: "a.test.", Records: []string{"@ SOA ns.a.test. h.a.test. 2 1 1 1 1"}}, Zone{}, "SOA and NS"},
		{"own delegation", Zone{Name: "a.test.", Records: []string{"sub NS ns.elsewhere.test."}}, Zone{}, "SOA and NS"},
		{"own DNSKEY", Zone{Name: "a.test.", Records: []string{"@ DNSKEY 257 3 13 AAAA"}}, Zone{}, "DNSKEY"},
		{"both windows", Zone{Name: "a.test.", Break: Break{ExpiredSigs: true, FutureSigs: true}}, Zone{}, "both"},
		{"bad spec", Zone{Name: "a.test.", Break: Break{DropSig: "www.a.test."}}, Zone{}, "owner TYPE"},
		{"spec outside zone", Zone{Name: "a.test.", Break: Break{CorruptSig: "www.b.test. A"}}, Zone{}, "outside the zone"},
		{"wrong DS at root", Zone{Name: ".", Break: Break{WrongDS: true}}, Zone{}, "no parent"},
		{"bad added record", Zone{Name: "a.test.", Break: Break{AddUnsigned: []string{"www BOGUS x"}}}, Zone{}, "added records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.zone.withDefaults()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("withDefaults() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("withDefaults(): %v", err)
			}
			if got.Name != tc.want.Name || got.Signer != tc.want.Signer || got.Algorithm != tc.want.Algorithm ||
				got.Denial != tc.want.Denial || got.Salt != tc.want.Salt || got.Iterations != tc.want.Iterations ||
				got.Unsigned != tc.want.Unsigned || !slices.Equal(got.Records, tc.want.Records) {
				t.Errorf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseRRsetSpec(t *testing.T) {
	tests := []struct {
		spec      string
		wantOwner string
		wantType  uint16
		wantErr   bool
	}{
		{"www.example.test. A", "www.example.test.", mdns.TypeA, false},
		{"WWW.Example.TEST mx", "www.example.test.", mdns.TypeMX, false},
		{"  _25._tcp.mx.a.test.\tTLSA ", "_25._tcp.mx.a.test.", mdns.TypeTLSA, false},
		{". DNSKEY", ".", mdns.TypeDNSKEY, false},
		{"www.example.test.", "", 0, true},
		{"www.example.test. A extra", "", 0, true},
		{"www.example.test. NOTATYPE", "", 0, true},
		{"", "", 0, true},
		{"a..b A", "", 0, true},
	}
	for _, tc := range tests {
		owner, typ, err := parseRRsetSpec(tc.spec)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseRRsetSpec(%q) error = %v, want error %v", tc.spec, err, tc.wantErr)
			continue
		}
		if owner != tc.wantOwner || typ != tc.wantType {
			t.Errorf("parseRRsetSpec(%q) = %q, %d; want %q, %d", tc.spec, owner, typ, tc.wantOwner, tc.wantType)
		}
	}
}

func TestNewTree(t *testing.T) {
	zones := []Zone{
		{Name: "a.b.test."}, // parent skips the absent b.test.
		{Name: "."},
		{Name: "test."},
		{Name: "example."},
		{Name: "c.example.", Unsigned: true},
	}
	tr, err := newTree(zones)
	if err != nil {
		t.Fatal(err)
	}
	wantParent := map[string]string{".": "", "test.": ".", "example.": ".", "a.b.test.": "test.", "c.example.": "example."}
	for z, p := range wantParent {
		if tr.parent[z] != p {
			t.Errorf("parent of %s = %q, want %q", z, tr.parent[z], p)
		}
	}
	var order []string
	for _, level := range tr.levels() {
		var names []string
		for _, z := range level {
			names = append(names, z.Name)
		}
		order = append(order, strings.Join(names, ","))
	}
	if want := []string{"a.b.test.,c.example.", "test.,example.", "."}; !slices.Equal(order, want) {
		t.Errorf("levels = %q, want %q (leaves first)", order, want)
	}
	var kids []string
	for _, c := range tr.children(".") {
		kids = append(kids, c.Name)
	}
	if want := []string{"test.", "example."}; !slices.Equal(kids, want) {
		t.Errorf("children of . = %q, want %q", kids, want)
	}

	for _, tc := range []struct {
		name    string
		zones   []Zone
		wantErr string
	}{
		{"no root", []Zone{{Name: "test."}}, "no root"},
		{"unsigned root", []Zone{{Name: ".", Unsigned: true}}, "must be signed"},
		{"duplicate", []Zone{{Name: "."}, {Name: "test."}, {Name: "TEST"}}, "twice"},
		{"invalid zone", []Zone{{Name: "."}, {Name: "x.test.", Algorithm: 7}}, "algorithm"},
	} {
		if _, err := newTree(tc.zones); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: newTree() error = %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}
