package config

import (
	"maps"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestKeyLines(t *testing.T) {
	src := doc(`
# comment with [brackets] and key = "value"
a = 1
b.c = "x # not a comment"
d = """
e = 2
[not.a.table]
"""
f = '''x''' # after
g = [
  1, # one
  [2, 3],
  { h = 4 },
]
"quoted.key" = { i = 1, j = { k = 2 } }
l = "esc\"aped \u0041"
m = 'lit\'  # a literal string ends at the first quote
n = 1979-05-27 07:32:00Z

[t1]
o = true
[t1 . "sub table"]
p = 1

[[arr]]
q = 1
[arr.inner]
r = 1
[[arr.nested]]
s = 1
[[arr.nested]]
s = 2

[[arr]]
q = 2
[[arr.nested]]
s = 3

["\u0041"]
u = 1
'lit key'.v = 2
`)
	// The scanner must only ever see documents the TOML parser accepts.
	var tree map[string]any
	if _, err := toml.Decode(string(src), &tree); err != nil {
		t.Fatalf("fixture is not valid TOML: %v", err)
	}
	want := map[string]int{
		"a":                  2,
		"b":                  3,
		"b.c":                3,
		"d":                  4,
		"f":                  8,
		"g":                  9,
		"g[0]":               10,
		"g[1]":               11,
		"g[1][0]":            11,
		"g[1][1]":            11,
		"g[2]":               12,
		"g[2].h":             12,
		`"quoted.key"`:       14,
		`"quoted.key".i`:     14,
		`"quoted.key".j`:     14,
		`"quoted.key".j.k`:   14,
		"l":                  15,
		"m":                  16,
		"n":                  17,
		"t1":                 19,
		"t1.o":               20,
		`t1."sub table"`:     21,
		`t1."sub table".p`:   22,
		"arr":                24,
		"arr[0]":             24,
		"arr[0].q":           25,
		"arr[0].inner":       26,
		"arr[0].inner.r":     27,
		"arr[0].nested":      28,
		"arr[0].nested[0]":   28,
		"arr[0].nested[0].s": 29,
		"arr[0].nested[1]":   30,
		"arr[0].nested[1].s": 31,
		"arr[1]":             33,
		"arr[1].q":           34,
		"arr[1].nested":      35,
		"arr[1].nested[0]":   35,
		"arr[1].nested[0].s": 36,
		"A":                  38,
		"A.u":                39,
		`A."lit key"`:        40,
		`A."lit key".v`:      40,
	}
	got := keyLines(string(src))
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("line of %s = %d, want %d", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s (line %d)", k, got[k])
		}
	}
}

func TestParentKey(t *testing.T) {
	tests := []struct{ key, want string }{
		{"a", ""},
		{"a.b", "a"},
		{"listener[1]", "listener"},
		{"listener[1].tls", "listener[1]"},
		{`local.aliases."a.b@c.d"`, "local.aliases"},
		{`local.aliases."x[0]\"."[2]`, `local.aliases."x[0]\"."`},
		{"", ""},
	}
	for _, tt := range tests {
		if got := parentKey(tt.key); got != tt.want {
			t.Errorf("parentKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}
