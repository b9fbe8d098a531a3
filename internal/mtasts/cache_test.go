package mtasts

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testEntry(t testing.TB, domain, id, body string, fetched time.Time) Entry {
	t.Helper()
	p, err := ParsePolicy([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Domain: domain, Policy: *p, ID: id, Fetched: fetched, Expires: fetched.Add(p.MaxAge)}
}

// TestCachePersists checks that entries survive reopening the directory, as a restart
// does (RFC 8461 §10.2).
func TestCachePersists(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	fetched := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := testEntry(t, "example.test", "id1", testPolicy, fetched)
	e.Failures, e.LastError, e.LastRefreshAttempt = 2, "boom", fetched.Add(time.Hour)
	if err := c.Put(e); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(testEntry(t, "b.example.test", "id2", testPolicy, fetched)); err != nil {
		t.Fatal(err)
	}

	c2, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := c2.Get("EXAMPLE.test.")
	if !ok {
		t.Fatal("entry lost across reopen")
	}
	if got.ID != "id1" || got.Policy.Mode != ModeEnforce || !got.Fetched.Equal(fetched) || !got.Expires.Equal(fetched.Add(24*time.Hour)) ||
		got.Failures != 2 || got.LastError != "boom" || got.Policy.Raw != testPolicy || !got.Policy.Matches("mx.example.test") {
		t.Errorf("got %+v", got)
	}
	all, err := c2.Entries()
	if err != nil || len(all) != 2 || all[0].Domain != "b.example.test" || all[1].Domain != "example.test" {
		t.Errorf("Entries = %+v, %v", all, err)
	}
	if err := c2.Delete("example.test"); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("example.test"); ok {
		t.Error("deleted entry still present")
	}
	if err := c2.Delete("example.test"); err != nil {
		t.Errorf("deleting a missing entry: %v", err)
	}
}

// TestCacheAtomicWrite checks that Put leaves no temporary files behind and that a
// stale temporary file from a crash is never read as an entry.
func TestCacheAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenCache(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("{half"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e := testEntry(t, "example.test", "id"+string(rune('a'+i)), testPolicy, time.Unix(int64(1e9+i), 0))
		if err := c.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if strings.Join(names, ",") != ".tmp-123,example.test.json" {
		t.Errorf("directory holds %v", names)
	}
	all, err := c.Entries()
	if err != nil || len(all) != 1 || all[0].ID != "ide" {
		t.Errorf("Entries = %+v, %v", all, err)
	}
}

// TestCacheCorrupted checks that unreadable or inconsistent files are ignored with a
// warning rather than applied or fatal.
func TestCacheCorrupted(t *testing.T) {
	fetched := time.Unix(1e9, 0).UTC()
	valid := testEntry(t, "good.example.test", "id1", testPolicy, fetched)
	corrupt, err := os.ReadFile(filepath.Join("testdata", "corrupt.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		file   string
		mutate func(*Entry)
		raw    []byte
	}{
		{"truncated JSON", "broken.example.json", nil, corrupt},
		{"not JSON", "junk.example.json", nil, []byte("\x00\x01garbage")},
		{"invalid stored policy", "bad.example.json", func(e *Entry) { e.Domain = "bad.example"; e.Policy.Raw = "version: STSv1\nmode: enforce\n" }, nil},
		{"expiry tampered", "late.example.json", func(e *Entry) { e.Domain = "late.example"; e.Expires = e.Expires.Add(time.Hour) }, nil},
		{"file for another domain", "other.example.json", nil, nil},
		{"invalid id", "id.example.json", func(e *Entry) { e.Domain = "id.example"; e.ID = "a-b" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs bytes.Buffer
			c, err := OpenCache(dir)
			if err != nil {
				t.Fatal(err)
			}
			c.Log = slog.New(slog.NewTextHandler(&logs, nil))
			if err := c.Put(valid); err != nil {
				t.Fatal(err)
			}
			raw := tt.raw
			if raw == nil {
				// Write the bad entry through Put under its own name, then move it.
				e := valid
				if tt.mutate != nil {
					tt.mutate(&e)
				}
				src := filepath.Join(dir, e.Domain+".json")
				if err := c.Put(e); err != nil {
					t.Fatal(err)
				}
				if raw, err = os.ReadFile(src); err != nil {
					t.Fatal(err)
				}
				if e.Domain != "good.example.test" {
					os.Remove(src)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, tt.file), raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.name != "file for another domain" { // that one is good.example.test's own data
				if _, ok := c.Get(strings.TrimSuffix(tt.file, ".json")); ok {
					t.Error("corrupted entry returned")
				}
			}
			all, err := c.Entries()
			if err != nil || len(all) != 1 || all[0].Domain != "good.example.test" {
				t.Errorf("Entries = %+v, %v", all, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("no warning logged: %q", logs.String())
			}
		})
	}
}

func TestCacheRejectsBadNames(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "../evil", "a/b", ".", "x..y"} {
		e := testEntry(t, d, "id", testPolicy, time.Unix(1e9, 0))
		if err := c.Put(e); err == nil {
			t.Errorf("Put(%q) succeeded", d)
		}
		if _, ok := c.Get(d); ok {
			t.Errorf("Get(%q) found something", d)
		}
	}
}

func TestOpenCacheNotDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCache(f); err == nil {
		t.Error("OpenCache on a file succeeded")
	}
}

// FuzzDecodeEntry checks that a cache file, whatever it holds, either decodes to an
// entry whose policy ParsePolicy accepts and whose expiry is fetch time plus max_age,
// or is refused.
func FuzzDecodeEntry(f *testing.F) {
	corrupt, err := os.ReadFile(filepath.Join("testdata", "corrupt.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(corrupt)
	f.Add([]byte(`{"domain":"example.test","policy":{"raw":"version: STSv1\nmode: none\nmax_age: 60\n"},"id":"a1",` +
		`"fetched":"2026-01-01T00:00:00Z","expires":"2026-01-01T00:01:00Z"}`))
	f.Add([]byte(`{"domain":"example.test","policy":{"mode":"enforce","raw":"version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n"},` +
		`"id":"x","fetched":"2026-01-01T00:00:00Z","expires":"2026-01-02T00:00:00Z","failures":3,"last_error":"e"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		p, err := ParsePolicy([]byte(e.Policy.Raw))
		if err != nil || p.Mode != e.Policy.Mode || p.MaxAge != e.Policy.MaxAge {
			t.Fatalf("decoded entry carries a policy ParsePolicy refuses or differs from: %+v, %v", e, err)
		}
		if !validHostname(e.Domain) || !validID(e.ID) || !e.Expires.Equal(e.Fetched.Add(p.MaxAge)) {
			t.Fatalf("accepted entry %+v", e)
		}
	})
}
