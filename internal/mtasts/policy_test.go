package mtasts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePolicyFixtures(t *testing.T) {
	tests := []struct {
		file   string
		mode   Mode
		mx     []string
		maxAge time.Duration
	}{
		{"enforce-crlf.txt", ModeEnforce, []string{"mail.example.com", "*.example.net", "backupmx.example.com"}, 604800 * time.Second},
		{"testing-lf.txt", ModeTesting, []string{"mx1.example.test"}, 86400 * time.Second},
		{"none.txt", ModeNone, nil, 86400 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParsePolicy(body)
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if p.Version != "STSv1" || p.Mode != tt.mode || !slices.Equal(p.MX, tt.mx) || p.MaxAge != tt.maxAge || p.Raw != string(body) {
				t.Errorf("got %+v", p)
			}
		})
	}
}

// TestParsePolicy covers STS-11 and STS-12 (RFC 8461 §3.2).
func TestParsePolicy(t *testing.T) {
	const base = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"
	tests := []struct {
		name   string
		body   string
		ok     bool
		mode   Mode
		mx     []string
		maxAge int64
	}{
		{"STS-11 LF", base, true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 CRLF", strings.ReplaceAll(base, "\n", "\r\n"), true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 no final newline", strings.TrimSuffix(base, "\n"), true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 no space after colon", "version:STSv1\nmode:testing\nmx:mx.example.test\nmax_age:0", true, ModeTesting, []string{"mx.example.test"}, 0},
		{"STS-11 tabs and trailing space", "version:\tSTSv1 \nmode: enforce\t\nmx:  mx.example.test  \nmax_age: 5\n", true, ModeEnforce, []string{"mx.example.test"}, 5},
		{"STS-11 version not first", "mode: enforce\nmx: mx.example.test\nmax_age: 60\nversion: STSv1\n", true, ModeEnforce, []string{"mx.example.test"}, 60},
		{"STS-11 blank lines skipped", "version: STSv1\n\nmode: enforce\r\n\r\nmx: mx.example.test\nmax_age: 60\n\n", true, ModeEnforce, []string{"mx.example.test"}, 60},
		{"STS-11 unknown keys ignored", base + "foo: bar baz\nx-ext.1: ü\n", true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 first duplicate wins: mode", base + "mode: none\n", true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 first duplicate wins: max_age", base + "max_age: 99999999999\n", true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 first duplicate wins: version", base + "version: STSv2\n", true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 mx repeats", base + "mx: *.example.test\nmx: MX2.Example.Test\n", true, ModeEnforce, []string{"mx.example.test", "*.example.test", "mx2.example.test"}, 86400},
		{"STS-11 mode none without mx", "version: STSv1\nmode: none\nmax_age: 1\n", true, ModeNone, nil, 1},
		{"STS-11 max_age upper bound", "version: STSv1\nmode: none\nmax_age: 31557600\n", true, ModeNone, nil, 31557600},
		{"STS-11 max_age leading zeros", "version: STSv1\nmode: none\nmax_age: 0000000060\n", true, ModeNone, nil, 60},
		{"STS-11 A-label mx", "version: STSv1\nmode: enforce\nmx: xn--bcher-kva.example\nmax_age: 1\n", true, ModeEnforce, []string{"xn--bcher-kva.example"}, 1},

		{"STS-12 empty body", "", false, "", nil, 0},
		{"STS-12 no version", "mode: enforce\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 wrong version", "version: STSv2\nmode: enforce\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 version case", "version: stsv1\nmode: enforce\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 no mode", "version: STSv1\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 bad mode", "version: STSv1\nmode: report\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 mode case", "version: STSv1\nmode: Enforce\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 no max_age", "version: STSv1\nmode: enforce\nmx: mx.example.test\n", false, "", nil, 0},
		{"STS-12 max_age too big", "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 31557601\n", false, "", nil, 0},
		{"STS-12 max_age 11 digits", "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 00000000060\n", false, "", nil, 0},
		{"STS-12 max_age negative", "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: -1\n", false, "", nil, 0},
		{"STS-12 max_age empty", "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age:\n", false, "", nil, 0},
		{"STS-12 max_age units", "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 1d\n", false, "", nil, 0},
		{"STS-12 enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 60\n", false, "", nil, 0},
		{"STS-12 testing without mx", "version: STSv1\nmode: testing\nmax_age: 60\n", false, "", nil, 0},
		{"STS-11 mx double wildcard", base + "mx: *.*.example.test\n", false, "", nil, 0},
		{"STS-11 mx inner wildcard", base + "mx: mx.*.example.test\n", false, "", nil, 0},
		{"STS-11 mx partial wildcard", base + "mx: mx*.example.test\n", false, "", nil, 0},
		{"STS-11 mx bare wildcard", base + "mx: *\n", false, "", nil, 0},
		{"STS-11 mx trailing dot", base + "mx: mx.example.test.\n", false, "", nil, 0},
		{"STS-11 mx empty", base + "mx:\n", false, "", nil, 0},
		{"STS-11 mx U-label", base + "mx: bücher.example\n", false, "", nil, 0},
		{"STS-11 mx underscore", base + "mx: mx_1.example.test\n", false, "", nil, 0},
		{"STS-11 mx hyphen edge", base + "mx: -mx.example.test\n", false, "", nil, 0},
		{"STS-11 mx empty label", base + "mx: mx..example.test\n", false, "", nil, 0},
		{"STS-11 mx two values", base + "mx: a.example.test b.example.test\n", false, "", nil, 0},
		{"STS-11 mx long label", base + "mx: " + strings.Repeat("a", 64) + ".example.test\n", false, "", nil, 0},
		{"STS-11 line without colon", base + "garbage\n", false, "", nil, 0},
		{"STS-11 key with space", base + "max age: 60\n", false, "", nil, 0},
		{"STS-11 leading space", " version: STSv1\nmode: none\nmax_age: 60\n", false, "", nil, 0},
		{"STS-11 extension key may start with a digit", base + "1x: y\n", true, ModeEnforce, []string{"mx.example.test"}, 86400},
		{"STS-11 keys are case-sensitive", "version: STSv1\nMode: none\nmode: enforce\nmx: mx.example.test\nmax_age: 60\n", true, ModeEnforce, []string{"mx.example.test"}, 60},
		{"STS-12 only a wrong-case mode", "version: STSv1\nMode: enforce\nmx: mx.example.test\nmax_age: 60\n", false, "", nil, 0},
		{"STS-11 key starts with underscore", base + "_x: y\n", false, "", nil, 0},
		{"STS-11 key too long", base + strings.Repeat("k", 33) + ": y\n", false, "", nil, 0},
		{"STS-11 NUL byte", base + "x: a\x00b\n", false, "", nil, 0},
		{"STS-11 bare CR", "version: STSv1\rmode: none\rmax_age: 60\r", false, "", nil, 0},
		{"STS-11 invalid UTF-8", base + "x: \xff\n", false, "", nil, 0},
		{"STS-12 HTML page", "<html><body>version: STSv1</body></html>", false, "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.body))
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParsePolicy succeeded: %+v", p)
				}
				if !errors.Is(err, ErrInvalidPolicy) {
					t.Errorf("error %v does not match ErrInvalidPolicy", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			if p.Mode != tt.mode || !slices.Equal(p.MX, tt.mx) || p.MaxAge != time.Duration(tt.maxAge)*time.Second {
				t.Errorf("got mode %q mx %q max_age %v", p.Mode, p.MX, p.MaxAge)
			}
		})
	}
}

// TestMatches covers STS-17 (RFC 8461 §4.1).
func TestMatches(t *testing.T) {
	p := &Policy{MX: []string{"mail.example.com", "*.example.net", "*.Mixed.Example"}}
	tests := []struct {
		host string
		want bool
	}{
		{"mail.example.com", true},
		{"MAIL.Example.COM", true},
		{"mail.example.com.", true},
		{"mx.example.com", false},
		{"example.com", false},
		{"mx.example.net", true},
		{"MX.EXAMPLE.NET.", true},
		{"a.b.example.net", false},
		{"example.net", false},
		{".example.net", false},
		{"xexample.net", false},
		{"mx.example.net.evil.test", false},
		{"*.example.net", true}, // a literal "*" label is still one label
		{"mx.mixed.example", true},
		{"", false},
		{".", false},
	}
	for _, tt := range tests {
		if got := p.Matches(tt.host); got != tt.want {
			t.Errorf("Matches(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if (&Policy{}).Matches("mx.example.com") {
		t.Error("empty policy matched")
	}
}

// FuzzParsePolicy checks that the parser never panics, and that what it accepts obeys
// STS-11: a known mode, max_age within bounds, valid patterns, mx unless mode none,
// and that the accepted text parses again to the same policy.
func FuzzParsePolicy(f *testing.F) {
	for _, name := range []string{"enforce-crlf.txt", "testing-lf.txt", "none.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 31557600"))
	f.Add([]byte("version:STSv1\r\nmode:none\r\nmax_age:0\r\n\r\n"))
	f.Add([]byte("mx: a\nmx: *.b\nversion: STSv1\nmode: testing\nmax_age: 1\nmode: none\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePolicy(body)
		if err != nil {
			if p != nil || !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("bad failure: %v, %+v", err, p)
			}
			return
		}
		if p.Version != "STSv1" || p.MaxAge < 0 || p.MaxAge > MaxMaxAge || p.MaxAge%time.Second != 0 {
			t.Fatalf("accepted bad policy %+v", p)
		}
		switch p.Mode {
		case ModeEnforce, ModeTesting:
			if len(p.MX) == 0 {
				t.Fatalf("mode %s without mx", p.Mode)
			}
		case ModeNone:
		default:
			t.Fatalf("accepted mode %q", p.Mode)
		}
		for _, m := range p.MX {
			if !validPattern(m) || m != strings.ToLower(m) {
				t.Fatalf("accepted pattern %q", m)
			}
		}
		q, err := ParsePolicy([]byte(p.Raw))
		if err != nil || q.Mode != p.Mode || q.MaxAge != p.MaxAge || !slices.Equal(q.MX, p.MX) {
			t.Fatalf("reparse differs: %v %+v", err, q)
		}
	})
}
