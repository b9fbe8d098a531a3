package main

import (
	"net/netip"
	"slices"
	"testing"

	"mxward/internal/config"
)

// MX-11: this server is an MX host only at addresses where it listens on port 25.
func TestSelfAddrs(t *testing.T) {
	got := selfAddrs([]config.Listener{
		{Address: "192.0.2.10:25"}, {Address: "127.0.0.1:2525"}, {Address: "[2001:db8::1]:25"},
		{Address: "0.0.0.0:25"}, {Address: "192.0.2.10:587"},
	})
	want := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::1")}
	if !slices.Equal(got, want) {
		t.Errorf("selfAddrs = %v, want %v", got, want)
	}
}
