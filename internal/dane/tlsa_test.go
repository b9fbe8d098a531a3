package dane

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"mxward/internal/dns"
)

func TestNames(t *testing.T) {
	tests := []struct {
		r    dns.TLSA
		want string
	}{
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1}, "DANE-EE(3) SPKI(1) SHA2-256(1)"},
		{dns.TLSA{Usage: 2, Selector: 0, MatchingType: 2}, "DANE-TA(2) Cert(0) SHA2-512(2)"},
		{dns.TLSA{Usage: 0, Selector: 0, MatchingType: 0}, "PKIX-TA(0) Cert(0) Full(0)"},
		{dns.TLSA{Usage: 1, Selector: 255, MatchingType: 255}, "PKIX-EE(1) PrivSel(255) PrivMatch(255)"},
		{dns.TLSA{Usage: 255, Selector: 7, MatchingType: 9}, "PrivCert(255) 7(7) 9(9)"},
		{dns.TLSA{Usage: 4, Selector: 2, MatchingType: 3}, "4(4) 2(2) 3(3)"},
	}
	for _, tt := range tests {
		if got := Describe(tt.r); got != tt.want {
			t.Errorf("Describe(%v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	digest := bytes.Repeat([]byte{0x9a, 0x3f}, 16)
	tests := []struct {
		r          dns.TLSA
		short, all string
	}{
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: digest}, "3 1 1 9a3f9a3f9a3f…", "3 1 1 " + strings.Repeat("9a3f", 16)},
		{dns.TLSA{Usage: 2, Selector: 0, MatchingType: 0, Data: []byte{0x30, 0x82}}, "2 0 0 3082 (2 bytes)", "2 0 0 3082"},
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1}, "3 1 1 -", "3 1 1 -"},
	}
	for _, tt := range tests {
		if got := Format(tt.r); got != tt.short {
			t.Errorf("Format = %q, want %q", got, tt.short)
		}
		if got := FormatFull(tt.r); got != tt.all {
			t.Errorf("FormatFull = %q, want %q", got, tt.all)
		}
	}
}

// TestParseRecordFixtures reads testdata/records.txt: one record in presentation
// format per line, a tab, then "ok" with the expected FormatFull or "error".
func TestParseRecordFixtures(t *testing.T) {
	f, err := os.Open("testdata/records.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("fixture line without a tab: %q", line)
		}
		n++
		r, err := ParseRecord(in)
		if want == "error" {
			if err == nil {
				t.Errorf("ParseRecord(%q) = %s, want an error", in, FormatFull(r))
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", in, err)
			continue
		}
		if got := FormatFull(r); "ok "+got != want {
			t.Errorf("ParseRecord(%q) = %q, want %q", in, "ok "+got, want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d fixtures read", n)
	}
}

func TestParseDigests(t *testing.T) {
	tests := []struct {
		in   string
		want []uint8 // nil: error
	}{
		{"sha512 sha256", []uint8{2, 1}},
		{"SHA2-256, SHA2-512", []uint8{1, 2}},
		{"sha256", []uint8{1}},
		{"2:1", []uint8{2, 1}},
		{"", nil},
		{"sha1", nil},
		{"full", nil},
		{"sha256 sha256", nil},
		{"sha512 0", nil},
	}
	for _, tt := range tests {
		got, err := ParseDigests(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("ParseDigests(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseDigests(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if d := DefaultDigests(); !slices.Equal(d, []uint8{MatchSHA512, MatchSHA256}) {
		t.Errorf("DefaultDigests() = %v", d)
	}
	DefaultDigests()[0] = 7 // a fresh slice each time: nothing global to spoil
	if d := DefaultDigests(); d[0] != MatchSHA512 {
		t.Errorf("DefaultDigests changed by a caller: %v", d)
	}
}
