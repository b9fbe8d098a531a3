package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPinningDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte("data_dir = \"/var/lib/mxward\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Pinning
	// Off by default: deferring mail for a domain that drops STARTTLS is a behaviour
	// change the operator opts into.
	if p.Enabled || time.Duration(p.MaxAge) != 30*24*time.Hour || p.MinObservations != 2 ||
		time.Duration(p.MinInterval) != time.Hour || p.Dir != filepath.Join("/var/lib/mxward", "pins") {
		t.Errorf("defaults: %+v", p)
	}
}

func TestPinningValues(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[pinning]
enabled = true
max_age = "90d"
min_observations = 5
min_interval = "6h"
dir = "/srv/pins"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Pinning{Enabled: true, MaxAge: Duration(90 * 24 * time.Hour), MinObservations: 5,
		MinInterval: Duration(6 * time.Hour), Dir: "/srv/pins"}
	if c.Pinning != want {
		t.Errorf("got %+v, want %+v", c.Pinning, want)
	}
}

// Each rule of validatePinning has a case that breaks it, with the file:line: key the
// operator sees.
func TestPinningErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"max_age too short", "[pinning]\nmax_age = \"30m\"\n",
			`t.toml:2: pinning.max_age: must be between 1h and 8784h0m0s (366d), not 30m0s`},
		{"max_age too long", "[pinning]\nmax_age = \"367d\"\n", `pinning.max_age: must be between 1h`},
		{"min_observations zero", "[pinning]\nmin_observations = 0\n",
			`t.toml:2: pinning.min_observations: must be between 1 and 1000, not 0`},
		{"min_observations huge", "[pinning]\nmin_observations = 1001\n", `pinning.min_observations: must be between 1 and 1000`},
		{"min_interval zero", "[pinning]\nmin_interval = \"0s\"\n", `t.toml:2: pinning.min_interval: must be longer than 0s`},
		{"min_interval not below max_age", "[pinning]\nmax_age = \"2h\"\nmin_interval = \"2h\"\n",
			`t.toml:3: pinning.min_interval: 2h0m0s is not shorter than max_age (2h0m0s)`},
		{"unknown key", "[pinning]\nenable = true\n", `pinning.enable`},
		{"enabled not a bool", "[pinning]\nenabled = \"yes\"\n", `pinning.enabled`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// One observation needs no interval below max_age.
	if _, err := Parse("t.toml", []byte("[pinning]\nmin_observations = 1\nmax_age = \"2h\"\nmin_interval = \"3h\"\n")); err != nil {
		t.Errorf("min_observations 1: %v", err)
	}
}
