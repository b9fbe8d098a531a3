package dnssec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestRootAnchors(t *testing.T) {
	got := RootAnchors()
	want := map[uint16]string{
		20326: "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
		38696: "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
	}
	if len(got) != len(want) {
		t.Fatalf("%d root anchors, want %d", len(got), len(want))
	}
	for _, rr := range got {
		ds, ok := rr.(*mdns.DS)
		if !ok || ds.Hdr.Name != "." || ds.Algorithm != mdns.RSASHA256 || ds.DigestType != mdns.SHA256 ||
			!strings.EqualFold(ds.Digest, want[ds.KeyTag]) {
			t.Errorf("unexpected root anchor %v", rr)
		}
	}
	// The root KSKs as Unbound's auto-trust file holds them must hash to these DS
	// records (RFC 4034 §5.1.4): the two copies check each other.
	keys, err := ReadAnchors("testdata/anchors/autotrust.key")
	if err != nil {
		t.Fatal(err)
	}
	var ks []*mdns.DNSKEY
	for _, rr := range keys {
		ks = append(ks, rr.(*mdns.DNSKEY))
	}
	var ds []*mdns.DS
	for _, rr := range got {
		ds = append(ds, rr.(*mdns.DS))
	}
	if matched := len(matchDS(ks, ds)); matched != 2 {
		t.Errorf("%d root KSKs match the built-in DS records, want 2", matched)
	}
	if RootAnchors()[0] == got[0] {
		t.Error("RootAnchors returns shared records")
	}
}

func TestParseAnchors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		want  []string // owner and type of each record
		error string   // expected in the error; "" for none
	}{
		{name: "one DS", text: ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
			want: []string{". DS"}},
		{name: "relative names and $ORIGIN", text: "$ORIGIN test.\n$TTL 60\nexample DS 1 13 2 " + strings.Repeat("AB", 32) + "\n",
			want: []string{"example.test. DS"}},
		{name: "relative $ORIGIN", text: "$ORIGIN test.\n$ORIGIN example\n@ DS 1 13 2 " + strings.Repeat("AB", 32) + "\n",
			want: []string{"example.test. DS"}},
		{name: "owner carried over", text: "a.test. DS 1 13 2 " + strings.Repeat("AB", 32) + "\n\tDS 2 13 2 " + strings.Repeat("CD", 32) + "\n",
			want: []string{"a.test. DS", "a.test. DS"}},
		{name: "parenthesised DNSKEY", text: "x. DNSKEY 257 3 13 (\n mdsswUyr3DPW132mOi8V9xESWE8jTo0d ; a comment (\n xCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ== )\n",
			want: []string{"x. DNSKEY"}},
		{name: "unbound trust-anchor lines", text: "# comment\ntrust-anchor: \"x. DS 1 13 2 " + strings.Repeat("AB", 32) + "\"\n",
			want: []string{"x. DS"}},
		{name: "an A record", text: "; ok\n. DS 1 13 2 " + strings.Repeat("AB", 32) + "\n\nx. A 192.0.2.1\n", error: "line 4: A record"},
		{name: "a syntax error", text: "\n\n. DS 1 13 two " + strings.Repeat("AB", 32) + "\n", error: "line 3"},
		{name: "$INCLUDE", text: "$INCLUDE /etc/passwd\n", error: "line 1: directive $INCLUDE"},
		{name: "unclosed parenthesis", text: "\nx. DNSKEY 257 3 13 (\n AAAA\n", error: "line 2: parenthesis not closed"},
		{name: "stray parenthesis", text: "x. DS 1 13 2 AB )\n", error: "line 1: unbalanced"},
		{name: "no records", text: "; nothing\n\n", error: "no DS or DNSKEY records"},
		{name: "blank owner first", text: " DS 1 13 2 " + strings.Repeat("AB", 32) + "\n", error: "line 1: record without an owner"},
		{name: "DS digest not hex", text: "x. DS 1 13 2 XYZ\n", error: "line 1: DS digest"},
		{name: "SHA-256 digest too short", text: "x. DS 1 13 2 ABCD\n", error: "line 1: DS digest of type 2 has 2 octets"},
		{name: "DNSKEY without the zone flag", text: "x. DNSKEY 1 3 13 AAAA\n", error: "line 1: DNSKEY is not a zone key"},
		{name: "class CH", text: "x. CH DS 1 13 2 " + strings.Repeat("AB", 32) + "\n", error: "line 1: class CH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rrs, err := ParseAnchors(strings.NewReader(tc.text))
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("error %v, want one with %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rr := range rrs {
				got = append(got, rr.Header().Name+" "+mdns.TypeToString[rr.Header().Rrtype])
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("records %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadAnchors(t *testing.T) {
	for _, tc := range []struct {
		file  string
		count int
		error string
	}{
		{"root-ds.zone", 2, ""},
		{"lab.zone", 2, ""},
		{"autotrust.key", 2, ""}, // the REVOKED and ADDPEND keys are left out
		{"unbound.conf", 2, ""},
		{"bad-type.zone", 0, "bad-type.zone: line 4: A record"},
		{"missing.zone", 0, "no such file"},
	} {
		rrs, err := ReadAnchors(filepath.Join("testdata/anchors", tc.file))
		switch {
		case tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)):
			t.Errorf("%s: error %v, want one with %q", tc.file, err, tc.error)
		case tc.error == "" && err != nil:
			t.Errorf("%s: %v", tc.file, err)
		case len(rrs) != tc.count:
			t.Errorf("%s: %d records, want %d", tc.file, len(rrs), tc.count)
		}
	}
	// The anchors read from a file work as Config.Anchors.
	rrs, err := ReadAnchors("testdata/anchors/lab.zone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Anchors: rrs}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Anchors: []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: "x.", Rrtype: mdns.TypeA}}}}); err == nil {
		t.Error("New accepted an A record as trust anchor")
	}
}

func FuzzParseAnchors(f *testing.F) {
	files, _ := filepath.Glob("testdata/anchors/*")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("$ORIGIN x.\n@ ( DS 1 13 2 AB ) ; (\n"))
	f.Add([]byte("trust-anchor: \"\"\n"))
	f.Add([]byte("a. DNSKEY 256 3 8 \"AwEAAQ==\" ;;state=3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rrs, err := ParseAnchors(bytes.NewReader(data))
		if err != nil {
			return
		}
		var text strings.Builder
		for _, rr := range rrs {
			switch rr.(type) {
			case *mdns.DS, *mdns.DNSKEY:
			default:
				t.Fatalf("parsed a %T", rr)
			}
			if rr.Header().Class != mdns.ClassINET {
				t.Fatalf("parsed class %d", rr.Header().Class)
			}
			text.WriteString(rr.String() + "\n")
		}
		// What was parsed reads back the same.
		again, err := ParseAnchors(strings.NewReader(text.String()))
		if err != nil {
			t.Fatalf("parsed anchors do not parse again: %v\n%s", err, text.String())
		}
		if len(again) != len(rrs) {
			t.Fatalf("%d records, %d after a round trip", len(rrs), len(again))
		}
		for i := range rrs {
			if rrs[i].String() != again[i].String() {
				t.Fatalf("record %d changed in a round trip: %v -> %v", i, rrs[i], again[i])
			}
		}
	})
}
