package policylist

import (
	"sync"
	"testing"
)

// TestCurrentConcurrent swaps lists while readers look up; run with -race.
func TestCurrentConcurrent(t *testing.T) {
	a := loadFixture(t)
	b, err := Load("testdata/local.toml")
	if err != nil {
		t.Fatal(err)
	}
	var c Current
	if _, ok, err := c.Lookup("example.com", fixtureTime); ok || err != nil {
		t.Fatalf("empty Current: %v, %v", ok, err)
	}
	c.Store(a)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				e, ok, err := c.Lookup("example.com", fixtureTime)
				if err != nil || ok && !e.MatchesMX("mx1.example.com") {
					t.Errorf("Lookup = %+v, %v, %v", e, ok, err)
					return
				}
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			c.Store(b)
		} else {
			c.Store(a)
		}
	}
	wg.Wait()
	if c.Load() != a {
		t.Error("Load does not return the last list stored")
	}
}
