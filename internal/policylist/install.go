package policylist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mxward/internal/atomicfile"
)

// Names of the files Install keeps in its directory.
const (
	// ListFile is the installed list, byte for byte as it was published.
	ListFile = "policy.json"
	// TimestampFile holds the timestamp of the newest list ever installed, one RFC 3339
	// line; Install never accepts a list older than it (LIST-04).
	TimestampFile = "policy.timestamp"
)

// MaxFutureSkew bounds how far in the future a list's timestamp may be when it is
// installed. A list dated years ahead would, once installed, make every genuine update
// look like a rollback; refusing it keeps one bad clock or bad list from freezing the
// list for good.
const MaxFutureSkew = 24 * time.Hour

// ErrRollback is matched, with errors.Is, by the error Install returns for a list older
// than the one installed.
var ErrRollback = errors.New("policy list is older than the installed one")

// RollbackError says which timestamps Install compared. It satisfies
// errors.Is(err, ErrRollback).
type RollbackError struct {
	Installed time.Time // timestamp of the newest list installed so far
	Offered   time.Time // timestamp of the refused list
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("refusing rollback: offered policy list has timestamp %s, older than the installed %s",
		e.Offered.UTC().Format(time.RFC3339Nano), e.Installed.UTC().Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrRollback) true.
func (e *RollbackError) Is(target error) bool { return target == ErrRollback }

// Load reads a list from a file: an EFF list if the document is a JSON object, else the
// operator's TOML file. Load does not check expiry; Lookup does.
func Load(path string) (*List, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading policy list: %w", err)
	}
	var l *List
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '{' {
		l, err = ParseEFF(bytes.NewReader(data))
	} else {
		l, err = ParseLocal(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	return l, nil
}

// LoadInstalled reads the list Install stored in dir. If none has been installed the
// error satisfies errors.Is(err, fs.ErrNotExist).
func LoadInstalled(dir string) (*List, error) {
	return Load(filepath.Join(dir, ListFile))
}

// InstalledTimestamp returns the timestamp of the newest list installed in dir: the
// larger of the one recorded in TimestampFile and the one of the list in ListFile. It
// returns the zero time if nothing was ever installed.
func InstalledTimestamp(dir string) (time.Time, error) {
	var mark time.Time
	b, err := os.ReadFile(filepath.Join(dir, TimestampFile))
	switch {
	case err == nil:
		if mark, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err != nil {
			// A damaged mark cannot be trusted to be low; refuse until the operator looks.
			return time.Time{}, fmt.Errorf("reading installed policy list timestamp: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return time.Time{}, fmt.Errorf("reading installed policy list timestamp: %w", err)
	}
	// The list itself counts too, in case the mark was lost; a damaged or absent list
	// does not, since the mark is written first.
	if l, err := LoadInstalled(dir); err == nil && l.Timestamp.After(mark) {
		mark = l.Timestamp
	}
	return mark, nil
}

// Install stores l in dir as the list in force, after checking at now that it has not
// expired (LIST-04), that its timestamp is not older than that of any list installed
// before (rollback protection, LIST-04: equal is accepted, so reinstalling the same list
// is harmless) and not more than MaxFutureSkew ahead of now.
//
// Both files are replaced atomically (written to a temporary file, synced, renamed, and
// the directory synced), the timestamp first: after a crash the recorded timestamp is
// never older than the list. Install does not lock: callers in several processes must
// serialize themselves.
func Install(dir string, l *List, now time.Time) error {
	if l == nil {
		return errors.New("installing policy list: no list")
	}
	// The operator's own TOML list carries no timestamp: rollback protection guards
	// against an older downloaded list being replayed, and the operator is this list's
	// author. It is installed as it is, and leaves the recorded timestamp alone.
	own := l.Version == LocalVersion && l.Timestamp.IsZero()
	if l.Timestamp.IsZero() && !own {
		return errors.New("installing policy list: it has no timestamp, so rollback cannot be detected")
	}
	if err := l.Check(now); err != nil {
		return fmt.Errorf("installing policy list: %w", err)
	}
	var err error
	if !own {
		if l.Timestamp.After(now.Add(MaxFutureSkew)) {
			return fmt.Errorf("installing policy list: timestamp %s is more than %s in the future",
				l.Timestamp.UTC().Format(time.RFC3339), MaxFutureSkew)
		}
		installed, err := InstalledTimestamp(dir)
		if err != nil {
			return fmt.Errorf("installing policy list: %w", err)
		}
		if l.Timestamp.Before(installed) {
			return fmt.Errorf("installing policy list: %w", &RollbackError{Installed: installed, Offered: l.Timestamp})
		}
	}
	doc := l.raw
	if doc == nil {
		if doc, err = l.encodeEFF(); err != nil {
			return fmt.Errorf("installing policy list: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("installing policy list: %w", err)
	}
	if !own {
		mark := l.Timestamp.UTC().Format(time.RFC3339Nano) + "\n"
		if err := atomicfile.Write(filepath.Join(dir, TimestampFile), []byte(mark), 0o644); err != nil {
			return fmt.Errorf("installing policy list: %w", err)
		}
	}
	if err := atomicfile.Write(filepath.Join(dir, ListFile), doc, 0o644); err != nil {
		return fmt.Errorf("installing policy list: %w", err)
	}
	return nil
}

// encodeEFF writes a list that was not parsed from a document (built by a program, or
// the operator's file) in the EFF format, with every policy spelled out.
func (l *List) encodeEFF() ([]byte, error) {
	type policy struct {
		Mode Mode     `json:"mode"`
		MXs  []string `json:"mxs"`
	}
	doc := struct {
		Timestamp string            `json:"timestamp"`
		Expires   string            `json:"expires"`
		Version   string            `json:"version"`
		Author    string            `json:"author"`
		Policies  map[string]policy `json:"policies"`
	}{
		Timestamp: l.Timestamp.UTC().Format(time.RFC3339Nano),
		Version:   EFFVersion,
		Author:    l.Author,
		Policies:  make(map[string]policy, len(l.entries)),
	}
	if l.Expires.IsZero() {
		return nil, errors.New("the EFF format needs an expires time")
	}
	doc.Expires = l.Expires.UTC().Format(time.RFC3339Nano)
	for d, e := range l.entries {
		if e.MinTLS != LevelSecure || e.MinVersion != defaultMinVersion {
			return nil, fmt.Errorf("entry for %q: min-tls %s and TLS version %#x cannot be written in the EFF format", d, e.MinTLS, e.MinVersion)
		}
		doc.Policies[d] = policy{Mode: e.Mode, MXs: e.MXs}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding policy list: %w", err)
	}
	return append(b, '\n'), nil
}
