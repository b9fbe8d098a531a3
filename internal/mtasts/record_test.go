package mtasts

import (
	"errors"
	"strings"
	"testing"
)

// TestParseRecord covers STS-02 and STS-03 (RFC 8461 §3.1).
func TestParseRecord(t *testing.T) {
	tests := []struct {
		name string
		txts []string
		id   string
		err  error // nil: success
	}{
		{"STS-02 RFC example", []string{"v=STSv1; id=20160831085700Z;"}, "20160831085700Z", nil},
		{"STS-02 no trailing semicolon", []string{"v=STSv1; id=abc123"}, "abc123", nil},
		{"STS-02 no spaces", []string{"v=STSv1;id=abc123;"}, "abc123", nil},
		{"STS-02 spaces around semicolons", []string{"v=STSv1 ;\tid=abc123 ; "}, "abc123", nil},
		{"STS-02 extension fields ignored", []string{"v=STSv1; ext=foo; id=x1; other.f_-=a:b/c"}, "x1", nil},
		{"STS-02 id 32 chars", []string{"v=STSv1; id=" + strings.Repeat("a", 32)}, strings.Repeat("a", 32), nil},
		{"STS-03 other TXT records discarded", []string{"v=spf1 -all", "v=STSv1; id=1", "hello"}, "1", nil},
		{"STS-03 v=STSv10 is not STSv1", []string{"v=STSv10; id=1", "v=STSv1; id=2"}, "2", nil},

		{"STS-03 no records", nil, "", ErrNoRecord},
		{"STS-03 only other records", []string{"v=spf1 -all", "google-site-verification=x"}, "", ErrNoRecord},
		{"STS-03 version case differs", []string{"v=stsv1; id=1"}, "", ErrNoRecord},
		{"STS-03 leading space", []string{" v=STSv1; id=1"}, "", ErrNoRecord},
		{"STS-03 two records", []string{"v=STSv1; id=1", "v=STSv1; id=2"}, "", ErrMultipleRecords},
		{"STS-03 two identical records", []string{"v=STSv1; id=1", "v=STSv1; id=1"}, "", ErrMultipleRecords},
		{"STS-02 version only", []string{"v=STSv1"}, "", ErrInvalidRecord},
		{"STS-02 version and semicolon", []string{"v=STSv1;"}, "", ErrInvalidRecord},
		{"STS-02 no id", []string{"v=STSv1; foo=bar"}, "", ErrInvalidRecord},
		{"STS-02 empty id", []string{"v=STSv1; id="}, "", ErrInvalidRecord},
		{"STS-02 id too long", []string{"v=STSv1; id=" + strings.Repeat("a", 33)}, "", ErrInvalidRecord},
		{"STS-02 id punctuation", []string{"v=STSv1; id=2016-08-31"}, "", ErrInvalidRecord},
		{"STS-02 id non-ASCII", []string{"v=STSv1; id=ü1"}, "", ErrInvalidRecord},
		{"STS-02 id twice", []string{"v=STSv1; id=1; id=2"}, "", ErrInvalidRecord},
		{"STS-02 id name case", []string{"v=STSv1; ID=1"}, "", ErrInvalidRecord},
		{"STS-02 empty field", []string{"v=STSv1;; id=1"}, "", ErrInvalidRecord},
		{"STS-02 field without =", []string{"v=STSv1; id=1; junk"}, "", ErrInvalidRecord},
		{"STS-02 value with space", []string{"v=STSv1; id=1; ext=a b"}, "", ErrInvalidRecord},
		{"STS-02 value with =", []string{"v=STSv1; id=1; ext=a=b"}, "", ErrInvalidRecord},
		{"STS-02 extension name may start with a digit", []string{"v=STSv1; 1d=1; id=1"}, "1", nil},
		{"STS-02 bad field name", []string{"v=STSv1; _d=1; id=1"}, "", ErrInvalidRecord},
		{"STS-02 junk after version", []string{"v=STSv1 x; id=1"}, "", ErrInvalidRecord},
		{"STS-02 two trailing semicolons", []string{"v=STSv1; id=1;;"}, "", ErrInvalidRecord},
		{"STS-02 whitespace around =", []string{"v=STSv1; id = 1"}, "", ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord(tt.txts)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseRecord = %+v, %v; want %v", r, err, tt.err)
				}
				return
			}
			if err != nil || r.ID != tt.id {
				t.Fatalf("ParseRecord = %+v, %v; want id %q", r, err, tt.id)
			}
		})
	}
}

// FuzzParseRecord checks that ParseRecord never panics, fails only with its own
// errors, and returns only ids of 1 to 32 letters or digits.
func FuzzParseRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;", "v=spf1 -all")
	f.Add("v=STSv1;id=1;ext=x", "")
	f.Add("v=STSv1; id=1", "v=STSv1; id=2")
	f.Add("v=STSv1 ;\t id=a ;", "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		r, err := ParseRecord([]string{a, b})
		if err != nil {
			if !errors.Is(err, ErrNoRecord) && !errors.Is(err, ErrMultipleRecords) && !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !validID(r.ID) {
			t.Fatalf("accepted id %q", r.ID)
		}
	})
}
