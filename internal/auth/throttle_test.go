package auth

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestThrottleWindow(t *testing.T) {
	c := newClock()
	th := NewThrottle(3, 10*time.Minute, c.now)
	ip := netip.MustParseAddr("127.0.0.1")
	other := netip.MustParseAddr("127.0.0.2")

	wantDelays := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}
	for i, want := range wantDelays {
		if !th.Allowed(ip) {
			t.Fatalf("blocked after %d failures", i)
		}
		th.Failure(ip)
		if got := th.Delay(ip); got != want {
			t.Errorf("Delay after %d failures = %v, want %v", i+1, got, want)
		}
	}
	if th.Allowed(ip) {
		t.Fatal("allowed after 3 failures")
	}
	if !th.Allowed(other) || th.Delay(other) != 0 {
		t.Error("another address is affected")
	}
	c.advance(10*time.Minute - time.Second)
	if th.Allowed(ip) {
		t.Fatal("allowed before the window passed")
	}
	c.advance(time.Second)
	if !th.Allowed(ip) {
		t.Fatal("still blocked once the window passed")
	}
	if d := th.Delay(ip); d != 0 {
		t.Errorf("Delay after the window = %v, want 0", d)
	}

	// Failures closer together than the window accumulate, however slowly
	// they come.
	for range 2 {
		th.Failure(ip)
		c.advance(9 * time.Minute)
	}
	if !th.Allowed(ip) {
		t.Fatal("blocked after 2 failures")
	}
	th.Failure(ip)
	if th.Allowed(ip) {
		t.Fatal("allowed after 3 failures 9 minutes apart")
	}

	// Failures further apart than the window never do.
	c.advance(time.Hour)
	for range 10 {
		th.Failure(ip)
		c.advance(10 * time.Minute)
		if !th.Allowed(ip) {
			t.Fatal("blocked by failures 10 minutes apart")
		}
	}
}

func TestThrottleSuccessResets(t *testing.T) {
	c := newClock()
	th := NewThrottle(2, time.Hour, c.now)
	ip := netip.MustParseAddr("::1")
	th.Failure(ip)
	th.Failure(ip)
	if th.Allowed(ip) {
		t.Fatal("allowed after 2 failures")
	}
	th.Success(ip)
	if !th.Allowed(ip) || th.Delay(ip) != 0 {
		t.Fatal("Success did not reset")
	}
	th.Failure(ip)
	if !th.Allowed(ip) {
		t.Fatal("blocked after 1 failure following a reset")
	}
	th.Success(netip.MustParseAddr("127.0.0.1")) // unknown: no effect
	if th.Delay(ip) != throttleBaseDelay {
		t.Error("Success for another address reset this one")
	}
}

func TestThrottleDelayCap(t *testing.T) {
	th := NewThrottle(0, time.Hour, newClock().now)
	ip := netip.MustParseAddr("127.0.0.1")
	for range 100 {
		th.Failure(ip)
		if !th.Allowed(ip) {
			t.Fatal("blocked with blocking disabled")
		}
	}
	if got := th.Delay(ip); got != throttleMaxDelay {
		t.Errorf("Delay after 100 failures = %v, want %v", got, throttleMaxDelay)
	}
}

func TestThrottleKeys(t *testing.T) {
	// Addresses here are only map keys; nothing connects to them.
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"fe80::1%eth0", "fe80::2%eth1", true},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"::1", "::2", true},
		{"::1", "127.0.0.1", false},
		{"::127.0.0.1", "127.0.0.1", false}, // IPv4-compatible, not mapped
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			th := NewThrottle(1, time.Hour, newClock().now)
			th.Failure(netip.MustParseAddr(tt.a))
			if got := !th.Allowed(netip.MustParseAddr(tt.b)); got != tt.same {
				t.Errorf("failure of %s blocks %s = %v, want %v", tt.a, tt.b, got, tt.same)
			}
		})
	}
}

func TestThrottleEviction(t *testing.T) {
	c := newClock()
	th := NewThrottle(1, time.Hour, c.now)
	a := netip.MustParseAddr("127.0.0.1")
	b := netip.MustParseAddr("127.0.0.2")
	th.Failure(a)
	c.advance(time.Second)
	th.Failure(b)
	c.advance(time.Second)
	th.Failure(a) // a is now the more recent
	// Fill the table: b, the oldest, must go to make room; a must stay.
	for i := range MaxThrottleKeys - 1 {
		c.advance(time.Millisecond)
		th.Failure(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := len(th.entries); n != MaxThrottleKeys || th.byAge.Len() != MaxThrottleKeys {
		t.Fatalf("tracking %d (%d) keys, want %d", n, th.byAge.Len(), MaxThrottleKeys)
	}
	if !th.Allowed(b) {
		t.Error("oldest entry was not evicted")
	}
	if th.Allowed(a) {
		t.Error("recently failed entry was evicted")
	}
	if th.Allowed(netip.AddrFrom4([4]byte{10, 0, 0, 0})) {
		t.Error("first filler entry was evicted")
	}
	th.Failure(netip.MustParseAddr("127.0.0.3"))
	if len(th.entries) > MaxThrottleKeys {
		t.Errorf("table grew to %d keys", len(th.entries))
	}
	if !th.Allowed(a) {
		// a was the oldest after the fillers; it is the next to go.
		t.Error("a survived although it was the oldest entry")
	}

	// Expired entries are dropped when looked up.
	c.advance(time.Hour)
	before := len(th.entries)
	th.Allowed(netip.MustParseAddr("127.0.0.3"))
	if len(th.entries) != before-1 {
		t.Errorf("expired entry kept: %d entries, want %d", len(th.entries), before-1)
	}
}

func TestThrottleConcurrent(t *testing.T) {
	th := NewThrottle(1000, time.Hour, newClock().now)
	ip := netip.MustParseAddr("::1")
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			other := netip.AddrFrom4([4]byte{127, 0, 1, byte(g)})
			for range 99 {
				th.Failure(ip)
				th.Allowed(ip)
				th.Delay(ip)
				th.Failure(other)
				th.Success(other)
			}
		})
	}
	wg.Wait()
	if !th.Allowed(ip) {
		t.Fatal("blocked after 990 failures with a limit of 1000")
	}
	for range 10 {
		th.Failure(ip)
	}
	if th.Allowed(ip) {
		t.Fatal("allowed after 1000 failures: failures were lost")
	}
	if len(th.entries) != 1 {
		t.Errorf("%d entries, want 1", len(th.entries))
	}
}
