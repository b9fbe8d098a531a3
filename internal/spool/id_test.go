package spool

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIDOrderAndShape(t *testing.T) {
	var g idGen
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	// The clock stands still, steps back an hour, then moves on past a shard.
	offsets := []time.Duration{0, 0, time.Microsecond, -time.Hour, time.Second, shardSpan + time.Second}
	var got []ID
	for _, d := range offsets {
		got = append(got, g.next(base.Add(d)))
	}
	if !slices.IsSorted(got) {
		t.Errorf("ids not in creation order: %v", got)
	}
	if len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("duplicate ids: %v", got)
	}
	for _, id := range got {
		ts, ok := parseID(string(id))
		if !ok || len(id) != idLen || strings.ToLower(string(id)) != string(id) {
			t.Fatalf("malformed id %q", id)
		}
		if d := ts.Sub(base); d < 0 || d > shardSpan+time.Second {
			t.Errorf("id %s carries time %v, made around %v", id, ts, base)
		}
	}
	if got[0].shard() != shardAt(base) {
		t.Errorf("shard %s, want %s", got[0].shard(), shardAt(base))
	}
	if got[len(got)-1].shard() == got[0].shard() {
		t.Errorf("ids %s and %s a shard span apart share a shard", got[0], got[len(got)-1])
	}
}

func FuzzParseID(f *testing.F) {
	var g idGen
	f.Add(string(g.next(time.Now())))
	f.Add(string(g.next(time.Unix(0, 0))))
	f.Add(strings.Repeat("v", idLen))
	f.Add("../../../../etc/passwd")
	f.Add("0123456789ABCDEFGHIJK")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ts, ok := parseID(s)
		if !ok {
			return
		}
		if len(s) != idLen || strings.ContainsAny(s, "/\\.") || strings.ToLower(s) != s {
			t.Fatalf("parseID accepted %q", s)
		}
		if !validShard(ID(s).shard()) {
			t.Fatalf("id %q has invalid shard", s)
		}
		// The time part round-trips and orders like the string does.
		var buf [idTimeLen]byte
		encodeBase32(buf[:], uint64(ts.UnixMicro()))
		if string(buf[:]) != s[:idTimeLen] {
			t.Fatalf("time of %q re-encodes as %q", s, buf)
		}
		if shardAt(ts) != ID(s).shard() {
			t.Fatalf("shardAt(%v) = %s, id %q is in %s", ts, shardAt(ts), s, ID(s).shard())
		}
	})
}
