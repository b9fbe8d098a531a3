package pin

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecodeEntry: no input panics the entry parser, and whatever it accepts is an entry
// Observe could have written, which survives encoding and decoding again unchanged.
func FuzzDecodeEntry(f *testing.F) {
	e := Entry{Domain: "example.net", FirstSeen: epoch, LastSeen: epoch.Add(time.Hour), Count: 3, Counted: 2,
		LastCounted: epoch.Add(time.Hour), Pinned: epoch.Add(time.Hour), Expires: epoch.Add(31 * 24 * time.Hour),
		MXHosts: []string{"mx1.example.net", "mx_2.example.net"}, TLSVersions: []string{"TLSv1.2", "TLSv1.3"}}
	f.Add(must(json.MarshalIndent(e, "", "  ")))
	e.Pinned = time.Time{}
	f.Add(must(json.Marshal(e)))
	f.Add([]byte(`{"domain":"../etc","first_seen":"2026-11-02T10:00:00Z"}`))
	f.Add([]byte(`{"domain":"example.net","count":-1}`))
	f.Add([]byte(`{"domain":"example.net","unknown":1}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEntry(data)
		if err != nil {
			return
		}
		if !validName(e.Domain) || e.Count < e.Counted || e.Counted < 1 || !e.LastSeen.Before(e.Expires) {
			t.Fatalf("accepted an impossible entry: %+v", e)
		}
		again, err := DecodeEntry(must(json.Marshal(e)))
		if err != nil {
			t.Fatalf("re-encoded entry refused: %v", err)
		}
		if string(must(json.Marshal(again))) != string(must(json.Marshal(e))) {
			t.Fatalf("round trip changed the entry: %+v != %+v", again, e)
		}
	})
}
