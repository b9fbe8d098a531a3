package policylist

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listAt builds an EFF list with the given timestamp, valid for two weeks.
func listAt(t *testing.T, ts time.Time, mx string) *List {
	t.Helper()
	doc := `{"timestamp": "` + ts.UTC().Format(time.RFC3339) + `", "expires": "` + ts.Add(14*24*time.Hour).UTC().Format(time.RFC3339) +
		`", "version": "0.1", "author": "test", "policies": {"example.com": {"mode": "enforce", "mxs": ["` + mx + `"]}}}`
	l, err := ParseEFF(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestInstallAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lists")
	if _, err := LoadInstalled(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadInstalled before Install: %v, want ErrNotExist", err)
	}
	if ts, err := InstalledTimestamp(dir); err != nil || !ts.IsZero() {
		t.Fatalf("InstalledTimestamp before Install = %s, %v", ts, err)
	}
	l := loadFixture(t)
	if err := Install(dir, l, fixtureTime); err != nil {
		t.Fatal(err)
	}
	// The list is stored as published, byte for byte, so a detached signature still
	// verifies (LIST-04).
	want, _ := os.ReadFile("testdata/policy.json")
	got, err := os.ReadFile(filepath.Join(dir, ListFile))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("installed file differs from the published one (%v)", err)
	}
	mark, _ := os.ReadFile(filepath.Join(dir, TimestampFile))
	if string(mark) != "2026-11-28T18:35:06.102519279Z\n" {
		t.Errorf("timestamp file = %q", mark)
	}
	back, err := LoadInstalled(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Len() != l.Len() || !back.Timestamp.Equal(l.Timestamp) {
		t.Errorf("reloaded list differs: %d domains, timestamp %s", back.Len(), back.Timestamp)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d files, want 2 (no temporary files left)", len(entries))
	}
}

// TestInstallRollback covers LIST-04: a list older than the installed one is refused,
// an equal or newer one accepted, and the high-water mark survives the list file.
func TestInstallRollback(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(time.Hour)
	steps := []struct {
		name     string
		ts       time.Time
		rollback bool
	}{
		{"first", t0, false},
		{"same again", t0, false},
		{"newer", t0.Add(time.Minute), false},
		{"older than newest", t0, true},
		{"much older", t0.Add(-48 * time.Hour), true},
		{"newer still", t0.Add(30 * time.Minute), false},
	}
	installed := time.Time{}
	for _, s := range steps {
		err := Install(dir, listAt(t, s.ts, "mx.example.com"), now)
		if !s.rollback {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			installed = s.ts
			continue
		}
		if !errors.Is(err, ErrRollback) {
			t.Fatalf("%s: err = %v, want ErrRollback", s.name, err)
		}
		var re *RollbackError
		if !errors.As(err, &re) || !re.Installed.Equal(installed) || !re.Offered.Equal(s.ts) {
			t.Errorf("%s: %#v", s.name, err)
		}
		// The refused list changed nothing.
		l, err := LoadInstalled(dir)
		if err != nil || !l.Timestamp.Equal(installed) {
			t.Errorf("%s: installed list now %v, %v", s.name, l.Timestamp, err)
		}
	}

	// The mark alone still refuses a rollback when the list file has gone.
	if err := os.Remove(filepath.Join(dir, ListFile)); err != nil {
		t.Fatal(err)
	}
	if err := Install(dir, listAt(t, t0, "mx.example.com"), now); !errors.Is(err, ErrRollback) {
		t.Errorf("without the list file: err = %v, want ErrRollback", err)
	}
	// And the list alone when the mark has gone.
	if err := Install(dir, listAt(t, installed, "mx.example.com"), now); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, TimestampFile)); err != nil {
		t.Fatal(err)
	}
	if err := Install(dir, listAt(t, t0, "mx.example.com"), now); !errors.Is(err, ErrRollback) {
		t.Errorf("without the mark: err = %v, want ErrRollback", err)
	}
}

func TestInstallRefuses(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// A list built by a program, not the operator's file, and without a timestamp.
	noStamp := listAt(t, t0, "mx.example.com")
	noStamp.Timestamp, noStamp.raw = time.Time{}, nil
	tests := []struct {
		name string
		l    *List
		now  time.Time
		is   error
		want string
	}{
		{"nil", nil, t0, nil, "no list"},
		{"expired (LIST-04)", listAt(t, t0, "mx.example.com"), t0.Add(15 * 24 * time.Hour), ErrExpired, "expired"},
		{"from the future", listAt(t, t0.Add(49*time.Hour), "mx.example.com"), t0, nil, "in the future"},
		{"no timestamp", noStamp, t0, nil, "no timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Install(dir, tt.l, tt.now)
			if err == nil || !strings.Contains(err.Error(), tt.want) || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused Install left %d files", len(entries))
			}
		})
	}
}

// The operator's own TOML list has no timestamp: it installs, again and again (serve
// installs policy_list.file at every start), even after a downloaded list with a
// timestamp, and leaves that timestamp to guard against the downloaded list's replay.
func TestInstallOwnList(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if err := Install(dir, listAt(t, t0, "mx.example.com"), t0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		own, err := Load("testdata/local.toml")
		if err != nil {
			t.Fatal(err)
		}
		if err := Install(dir, own, t0.Add(time.Hour)); err != nil {
			t.Fatalf("install %d of the operator's list: %v", i+1, err)
		}
	}
	got, err := LoadInstalled(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != LocalVersion {
		t.Errorf("installed list version %q, want the operator's", got.Version)
	}
	if _, ok, _ := got.Lookup("partner.example", t0); !ok {
		t.Error("the operator's entry is not in force")
	}
	if err := Install(dir, listAt(t, t0.Add(-time.Hour), "mx.example.com"), t0); !errors.Is(err, ErrRollback) {
		t.Errorf("an older downloaded list after the operator's: %v, want ErrRollback", err)
	}
}

func TestInstallDamagedMark(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, TimestampFile), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if err := Install(dir, listAt(t, t0, "mx.example.com"), t0); err == nil || !strings.Contains(err.Error(), "timestamp") {
		t.Fatalf("err = %v, want a refusal naming the timestamp", err)
	}
}

// TestInstallEncodes covers a list that was not parsed from a document: Install writes
// it in the EFF format, and it reads back the same.
func TestInstallEncodes(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	src := listAt(t, t0, ".mail.example.net")
	src.raw = nil
	dir := t.TempDir()
	if err := Install(dir, src, t0); err != nil {
		t.Fatal(err)
	}
	l, err := LoadInstalled(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := l.Lookup("example.com", t0)
	if err != nil || !ok || e.Mode != ModeEnforce || len(e.MXs) != 1 || e.MXs[0] != ".mail.example.net" {
		t.Fatalf("Lookup = %+v, %v, %v", e, ok, err)
	}
	if !l.Expires.Equal(src.Expires) || l.Author != "test" {
		t.Errorf("Expires %s Author %q", l.Expires, l.Author)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version": "0.1"}`), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("err = %v, want it to name the file", err)
	}
}
