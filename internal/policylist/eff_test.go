package policylist

import (
	"strings"
	"testing"
	"time"
)

// effDocument builds a list around a policies object, with valid headers.
func effDocument(policies, aliases string) string {
	if aliases == "" {
		aliases = "{}"
	}
	return `{"timestamp": 1764354906, "expires": 1765564506, "version": "0.1", "author": "test",
		"policy-aliases": ` + aliases + `, "policies": ` + policies + `}`
}

// TestParseEFFRefuses covers LIST-01's structure: every malformed list is refused whole.
func TestParseEFFRefuses(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"not JSON", `policy`, "invalid character"},
		{"array", `[]`, "cannot unmarshal"},
		{"no version", `{"timestamp": 1, "expires": 2, "policies": {}}`, "no version"},
		{"old draft version", `{"timestamp": 1, "expires": 2, "version": "0.0", "policies": {}}`, `version "0.0"`},
		{"no timestamp", `{"expires": 2, "version": "0.1", "policies": {}}`, "no timestamp"},
		{"null expires", `{"timestamp": 1, "expires": null, "version": "0.1", "policies": {}}`, "no expires"},
		{"bad timestamp", `{"timestamp": "yesterday", "expires": 2, "version": "0.1", "policies": {}}`, "timestamp"},
		{"negative expires", `{"timestamp": 1, "expires": -5, "version": "0.1", "policies": {}}`, "expires"},
		{"boolean expires", `{"timestamp": 1, "expires": true, "version": "0.1", "policies": {}}`, "expires"},
		{"expires before timestamp", `{"timestamp": 10, "expires": 5, "version": "0.1", "policies": {}}`, "not after"},
		{"no policies", `{"timestamp": 1, "expires": 2, "version": "0.1"}`, "no policies"},
		{"LIST-05 draft tls-policies", `{"timestamp": 1, "expires": 2, "version": "0.1", "tls-policies": {}}`, "no policies"},
		{"policy not object", effDocument(`{"example.com": "enforce"}`, ""), "cannot unmarshal"},
		{"null policy", effDocument(`{"example.com": null}`, ""), "null"},
		{"no mode", effDocument(`{"example.com": {"mxs": ["mx.example.com"]}}`, ""), "no mode"},
		{"bad mode", effDocument(`{"example.com": {"mode": "Enforce", "mxs": ["mx.example.com"]}}`, ""), `mode "Enforce"`},
		{"no mxs", effDocument(`{"example.com": {"mode": "enforce"}}`, ""), "no MX patterns"},
		{"empty mxs", effDocument(`{"example.com": {"mode": "enforce", "mxs": []}}`, ""), "no MX patterns"},
		{"mxs not list", effDocument(`{"example.com": {"mode": "enforce", "mxs": "mx.example.com"}}`, ""), "cannot unmarshal"},
		{"LIST-05 retired field", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["mx.example.com"], "min-tls-version": "TLSv1.2"}}`, ""), `unknown field "min-tls-version"`},
		{"wildcard mx", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["*.example.com"]}}`, ""), "not a wildcard"},
		{"empty mx", effDocument(`{"example.com": {"mode": "enforce", "mxs": [""]}}`, ""), "empty name"},
		{"bare dot mx", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["."]}}`, ""), "empty name"},
		{"mx with space", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["mx example.com"]}}`, ""), "not allowed"},
		{"suffix domain", effDocument(`{".example.com": {"mode": "enforce", "mxs": ["mx.example.com"]}}`, ""), "exactly"},
		{"empty domain", effDocument(`{"": {"mode": "enforce", "mxs": ["mx.example.com"]}}`, ""), "empty name"},
		{"domain twice", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["mx.example.com"]}, "Example.COM": {"mode": "testing", "mxs": ["mx.example.com"]}}`, ""), "listed twice"},
		{"long label", effDocument(`{"`+strings.Repeat("a", 64)+`.example": {"mode": "enforce", "mxs": ["mx.example.com"]}}`, ""), "exceeds 63"},
		{"unknown alias", effDocument(`{"example.com": {"policy-alias": "nope"}}`, ""), `unknown policy-alias "nope"`},
		{"empty alias", effDocument(`{"example.com": {"policy-alias": ""}}`, ""), "empty policy-alias"},
		{"alias not string", effDocument(`{"example.com": {"policy-alias": 3}}`, ""), "policy-alias"},
		{"alias of alias", effDocument(`{"example.com": {"policy-alias": "a"}}`, `{"a": {"policy-alias": "b"}, "b": {"mode": "enforce", "mxs": ["mx.example.com"]}}`), "another alias"},
		{"conflicting duplicate domain", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["mx.example.com"]}, "example.com": {"mode": "testing", "mxs": ["mx.example.com"]}}`, ""), "twice with different values"},
		{"conflicting duplicate alias", effDocument(`{}`, `{"a": {"mode": "enforce", "mxs": [".example.net"]}, "a": {"mode": "enforce", "mxs": [".example.org"]}}`), "twice with different values"},
		{"policies not object", `{"timestamp": 1, "expires": 2, "version": "0.1", "policies": []}`, "want an object"},
		{"bad alias body", effDocument(`{}`, `{"a": {"mode": "enforce", "mxs": []}}`), `policy alias "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseEFF(strings.NewReader(tt.doc))
			if err == nil {
				t.Fatalf("ParseEFF accepted it: %d domains", l.Len())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestParseEFFAccepts covers what LIST-01 allows beyond the fixture.
func TestParseEFFAccepts(t *testing.T) {
	tests := []struct {
		name, doc, domain string
		mxs               []string
	}{
		{"empty policies", `{"timestamp": 1, "expires": 2, "version": "0.1", "policies": {}}`, "", nil},
		{"no author, no aliases", `{"timestamp": 1, "expires": 2, "version": "0.1", "policies": {"example.com": {"mode": "testing", "mxs": ["mx.example.com"]}}}`, "example.com", []string{"mx.example.com"}},
		{"unknown top-level field", `{"timestamp": 1, "expires": 2, "version": "0.1", "comment": "x", "policies": {}}`, "", nil},
		{"duplicate patterns dropped, case folded", effDocument(`{"example.com": {"mode": "enforce", "mxs": ["MX.example.com", "mx.example.com.", ".Example.net"]}}`, ""), "example.com", []string{"mx.example.com", ".example.net"}},
		{"alias ignores other fields", effDocument(`{"example.com": {"policy-alias": "a", "mxs": 7, "other": true}}`, `{"a": {"mode": "testing", "mxs": [".example.net"]}}`), "example.com", []string{".example.net"}},
		{"unused alias", effDocument(`{}`, `{"a": {"mode": "testing", "mxs": [".example.net"]}}`), "", nil},
		{"U-label domain", effDocument(`{"bücher.example": {"mode": "testing", "mxs": ["mx.bücher.example"]}}`, ""), "xn--bcher-kva.example", []string{"mx.xn--bcher-kva.example"}},
		// The published lists of 2018 carried an empty "pinsets" object (LIST-05) and
		// repeated a domain with the same policy; neither may take a list out of service.
		{"pinsets", `{"timestamp": 1, "expires": 2, "version": "0.1", "pinsets": {}, "policy-aliases": {}, "policies": {}}`, "", nil},
		{"identical duplicate", effDocument(`{"example.com": {"policy-alias": "a"}, "example.org": {"mode": "testing", "mxs": ["mx.example.org"]}, "example.com": { "policy-alias" : "a" }}`, `{"a": {"mode": "testing", "mxs": [".example.net"]}}`), "example.com", []string{".example.net"}},
		{"null aliases", `{"timestamp": 1, "expires": 2, "version": "0.1", "policy-aliases": null, "policies": {}}`, "", nil},
		{"surrounding whitespace", "\n\t " + effDocument(`{}`, "") + "\n", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseEFF(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if tt.domain == "" {
				return
			}
			e, ok, err := l.Lookup(tt.domain, time.Unix(1, 0))
			if err != nil || !ok {
				t.Fatalf("Lookup(%q) = %v, %v", tt.domain, ok, err)
			}
			if strings.Join(e.MXs, " ") != strings.Join(tt.mxs, " ") {
				t.Errorf("MXs = %q, want %q", e.MXs, tt.mxs)
			}
		})
	}
}

// TestParseTime covers LIST-01's two spellings of timestamp and expires.
func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		raw  string
		want time.Time
		ok   bool
	}{
		{`1591209306`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`1591209306.5`, utc(2020, 6, 3, 18, 35, 6, 500000000), true},
		{`"1591209306"`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`"2020-06-03T18:35:06.102519+00:00"`, utc(2020, 6, 3, 18, 35, 6, 102519000), true},
		{`"2020-06-03T18:35:06Z"`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`"2020-06-03T20:35:06+02:00"`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`"2020-06-03T18:35:06"`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`"2020-06-03 18:35:06+00:00"`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`"2020-06-03T18:35:06+0000"`, utc(2020, 6, 3, 18, 35, 6, 0), true},
		{`"2020-06-03"`, utc(2020, 6, 3, 0, 0, 0, 0), true},
		{`" 2020-06-03 "`, utc(2020, 6, 3, 0, 0, 0, 0), true},
		{`"06/03/2020"`, time.Time{}, false},
		{`"2020-13-03"`, time.Time{}, false},
		{`""`, time.Time{}, false},
		{`-1`, time.Time{}, false},
		{`1e400`, time.Time{}, false},
		{`99999999999999`, time.Time{}, false},
		{`{}`, time.Time{}, false},
		{`null`, time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseTime("expires", []byte(tt.raw))
		if (err == nil) != tt.ok {
			t.Errorf("parseTime(%s) error = %v, want ok %v", tt.raw, err, tt.ok)
			continue
		}
		if tt.ok && !got.Equal(tt.want) {
			t.Errorf("parseTime(%s) = %s, want %s", tt.raw, got, tt.want)
		}
	}
}

func TestParseEFFTooLarge(t *testing.T) {
	doc := `{"timestamp": 1, "expires": 2, "version": "0.1", "author": "` + strings.Repeat("a", MaxListSize) + `", "policies": {}}`
	if _, err := ParseEFF(strings.NewReader(doc)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size error", err)
	}
}
