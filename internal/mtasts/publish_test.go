package mtasts

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPublish(t *testing.T) {
	week := 604800 * time.Second
	tests := []struct {
		name    string
		in      Policy
		text    string // "" when Publish must fail
		wantErr string
	}{
		{
			name: "testing, one mx",
			in:   Policy{Mode: ModeTesting, MX: []string{"mx.example.test"}, MaxAge: week},
			text: "version: STSv1\r\nmode: testing\r\nmx: mx.example.test\r\nmax_age: 604800\r\n",
		},
		{
			name: "enforce, patterns lower-cased in order",
			in:   Policy{Version: "STSv1", Mode: ModeEnforce, MX: []string{"MX2.Example.TEST", "*.example.net"}, MaxAge: MaxMaxAge},
			text: "version: STSv1\r\nmode: enforce\r\nmx: mx2.example.test\r\nmx: *.example.net\r\nmax_age: 31557600\r\n",
		},
		{
			name: "none without mx (RFC 8461 §8.3)",
			in:   Policy{Mode: ModeNone, MaxAge: 86400 * time.Second},
			text: "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n",
		},
		{
			name: "max_age 0 is allowed by RFC 8461 §3.2",
			in:   Policy{Mode: ModeTesting, MX: []string{"mx.example.test"}},
			text: "version: STSv1\r\nmode: testing\r\nmx: mx.example.test\r\nmax_age: 0\r\n",
		},
		{name: "STS-12 unknown mode", in: Policy{Mode: "Enforce", MX: []string{"mx.example.test"}, MaxAge: week}, wantErr: "unknown mode"},
		{name: "STS-12 empty mode", in: Policy{MX: []string{"mx.example.test"}, MaxAge: week}, wantErr: "unknown mode"},
		{name: "STS-12 version", in: Policy{Version: "STSv2", Mode: ModeTesting, MX: []string{"mx.example.test"}, MaxAge: week}, wantErr: "version"},
		{name: "STS-12 no mx in enforce", in: Policy{Mode: ModeEnforce, MaxAge: week}, wantErr: "at least one mx"},
		{name: "STS-11 max_age above a year", in: Policy{Mode: ModeTesting, MX: []string{"mx.example.test"}, MaxAge: MaxMaxAge + time.Second}, wantErr: "outside"},
		{name: "negative max_age", in: Policy{Mode: ModeTesting, MX: []string{"mx.example.test"}, MaxAge: -time.Second}, wantErr: "outside"},
		{name: "fractional max_age", in: Policy{Mode: ModeTesting, MX: []string{"mx.example.test"}, MaxAge: 1500 * time.Millisecond}, wantErr: "whole number"},
		{name: "STS-17 inner wildcard", in: Policy{Mode: ModeTesting, MX: []string{"mx.*.example.test"}, MaxAge: week}, wantErr: "left-most label"},
		{name: "pattern with a newline cannot inject a line", in: Policy{Mode: ModeTesting, MX: []string{"mx.example.test\r\nmode: none"}, MaxAge: week}, wantErr: "invalid mx pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := Publish(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Publish(%+v) = %+v, %v; want an error containing %q", tt.in, pub, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Publish(%+v): %v", tt.in, err)
			}
			if pub.Text != tt.text || pub.Policy.Raw != tt.text {
				t.Errorf("text = %q, want %q", pub.Text, tt.text)
			}
			if len(pub.ID) != 16 || strings.Trim(pub.ID, "0123456789abcdef") != "" {
				t.Errorf("id %q: want 16 lower-case hex digits", pub.ID)
			}
			// The TXT record it goes with parses back to the same id (STS-02).
			rec, err := ParseRecord([]string{pub.Record()})
			if err != nil || rec.ID != pub.ID {
				t.Errorf("record %q parses to %+v, %v", pub.Record(), rec, err)
			}
		})
	}
}

// The id is a function of the text: the same values give the same id (a restart or a
// second instance publishes what DNS already says), and any change in the values gives
// another id, so senders fetch the new policy (RFC 8461 §3.1, STS-04).
func TestPublishIDFollowsText(t *testing.T) {
	base := Policy{Mode: ModeTesting, MX: []string{"mx.example.test"}, MaxAge: 604800 * time.Second}
	a, err := Publish(base)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Publish(Policy{Mode: ModeTesting, MX: []string{"MX.example.test"}, MaxAge: 604800 * time.Second})
	if err != nil || again.ID != a.ID || again.Text != a.Text {
		t.Fatalf("same values published differently: %+v %+v %v", a, again, err)
	}
	changes := map[string]Policy{
		"mode":       {Mode: ModeEnforce, MX: base.MX, MaxAge: base.MaxAge},
		"mx added":   {Mode: base.Mode, MX: []string{"mx.example.test", "mx2.example.test"}, MaxAge: base.MaxAge},
		"mx changed": {Mode: base.Mode, MX: []string{"*.example.test"}, MaxAge: base.MaxAge},
		"max_age":    {Mode: base.Mode, MX: base.MX, MaxAge: base.MaxAge + time.Second},
	}
	for name, p := range changes {
		b, err := Publish(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b.ID == a.ID {
			t.Errorf("%s: id %s did not change with the policy", name, b.ID)
		}
	}
}

// Every published policy parses back, with the strict parser senders use, to the values
// it was made from (STS-11, STS-12).
func TestPublishRoundTrip(t *testing.T) {
	for _, p := range []Policy{
		{Mode: ModeEnforce, MX: []string{"mx1.example.test", "*.example.net", "xn--bcher-kva.example"}, MaxAge: 86400 * time.Second},
		{Mode: ModeTesting, MX: []string{"localhost"}, MaxAge: time.Second},
		{Mode: ModeNone, MaxAge: 0},
		{Mode: ModeNone, MX: []string{"mx.example.test"}, MaxAge: MaxMaxAge},
	} {
		checkRoundTrip(t, p)
	}
}

func checkRoundTrip(t *testing.T, in Policy) {
	t.Helper()
	pub, err := Publish(in)
	if err != nil {
		t.Fatalf("Publish(%+v): %v", in, err)
	}
	got, err := ParsePolicy([]byte(pub.Text))
	if err != nil {
		t.Fatalf("published policy %q does not parse: %v", pub.Text, err)
	}
	want := make([]string, len(in.MX))
	for i, m := range in.MX {
		want[i] = strings.ToLower(m)
	}
	if got.Version != "STSv1" || got.Mode != in.Mode || got.MaxAge != in.MaxAge || !slices.Equal(got.MX, want) ||
		got.Raw != pub.Text || !slices.Equal(pub.Policy.MX, want) {
		t.Errorf("round trip of %+v: parsed %+v", in, got)
	}
	if !strings.HasSuffix(pub.Text, "\r\n") || strings.Count(pub.Text, "\n") != strings.Count(pub.Text, "\r\n") {
		t.Errorf("text %q: every line must end in CRLF", pub.Text)
	}
	for _, m := range want {
		if !got.Matches(strings.Replace(m, "*", "host", 1)) {
			t.Errorf("parsed policy does not match its own pattern %q", m)
		}
	}
}

func TestCheckPattern(t *testing.T) {
	tests := []struct {
		pat  string
		want string // "" for valid
	}{
		{"mx.example.test", ""},
		{"MX.Example.Test", ""},
		{"*.example.test", ""},
		{"localhost", ""},
		{"xn--bcher-kva.example", ""},
		{"a-b.c", ""},
		{"", "empty"},
		{"*", "left-most"},
		{"*.", "needs a domain"},
		{"*example.test", "left-most"},
		{"mx*.example.test", "left-most"},
		{"mx.*.example.test", "left-most"},
		{"*.*.example.test", "left-most"},
		{"mx.example.test.", "trailing dot"},
		{"mx..example.test", "empty label"},
		{".example.test", "empty label"},
		{"-mx.example.test", "hyphen"},
		{"mx-.example.test", "hyphen"},
		{"mx_1.example.test", "not a letter"},
		{"bücher.example", "A-labels"},
		{"mx example.test", "not a letter"},
		{strings.Repeat("a", 64) + ".test", "63"},
		{strings.Repeat("abcdefghi.", 26) + "test", "253"},
	}
	for _, tt := range tests {
		err := CheckPattern(tt.pat)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckPattern(%q) = %v, want nil", tt.pat, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidPattern)):
			t.Errorf("CheckPattern(%q) = %v, want ErrInvalidPattern mentioning %q", tt.pat, err, tt.want)
		}
		// CheckPattern explains; the parser decides. They must agree.
		if (err == nil) != validPattern(strings.ToLower(tt.pat)) {
			t.Errorf("CheckPattern(%q) = %v but the policy parser says valid=%v", tt.pat, err, validPattern(strings.ToLower(tt.pat)))
		}
	}
}

// FuzzCheckPattern: CheckPattern accepts exactly the patterns the policy parser accepts,
// so the configuration never admits a pattern that would make senders discard the whole
// policy.
func FuzzCheckPattern(f *testing.F) {
	for _, s := range []string{"mx.example.test", "*.example.test", "*.", "*", "a.*.b", "MX.EXAMPLE", "x..y", "-a.b", "a.b.", "bücher.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pat string) {
		err := CheckPattern(pat)
		if err != nil && !errors.Is(err, ErrInvalidPattern) {
			t.Fatalf("CheckPattern(%q) = %v, not ErrInvalidPattern", pat, err)
		}
		if (err == nil) != validPattern(strings.ToLower(pat)) {
			t.Fatalf("CheckPattern(%q) = %v, parser's validPattern disagrees", pat, err)
		}
		if err != nil {
			return
		}
		_, perr := ParsePolicy([]byte("version: STSv1\r\nmode: enforce\r\nmx: " + pat + "\r\nmax_age: 60\r\n"))
		if perr != nil {
			t.Fatalf("pattern %q passes CheckPattern but its policy does not parse: %v", pat, perr)
		}
	})
}

// FuzzPublish: whatever Publish accepts parses back to the same values, with CRLF line
// endings, and an id that a TXT record can carry (round trip of RFC 8461 §3.1 and §3.2).
// Whatever it refuses, it refuses with an error rather than a broken policy.
func FuzzPublish(f *testing.F) {
	f.Add(uint8(0), int64(604800), "mx.example.test")
	f.Add(uint8(1), int64(31557600), "mx1.example.test\n*.example.net")
	f.Add(uint8(2), int64(0), "")
	f.Add(uint8(3), int64(31557601), "mx.example.test")
	f.Add(uint8(0), int64(86400), "mx.example.test\r\nmode: none")
	f.Add(uint8(1), int64(-1), "a.*.b")
	modes := []Mode{ModeTesting, ModeEnforce, ModeNone, "Enforce", ""}
	f.Fuzz(func(t *testing.T, mode uint8, maxAge int64, mxList string) {
		var mx []string
		if mxList != "" {
			mx = strings.Split(mxList, "\n")
		}
		in := Policy{Mode: modes[int(mode)%len(modes)], MX: mx, MaxAge: time.Duration(maxAge) * time.Second}
		if maxAge > int64(MaxMaxAge/time.Second)*2 || maxAge < -int64(MaxMaxAge/time.Second) {
			in.MaxAge = MaxMaxAge + time.Second // avoid overflow; still out of range
		}
		pub, err := Publish(in)
		if err != nil {
			return
		}
		checkRoundTrip(t, in)
		if rec, err := ParseRecord([]string{pub.Record()}); err != nil || rec.ID != pub.ID {
			t.Fatalf("record %q: %+v, %v", pub.Record(), rec, err)
		}
	})
}
