package auth

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// cheapArgon2id is a valid argon2id cost low enough to keep tests fast.
var cheapArgon2id = argon2idHash{memory: 64, time: 1, threads: 1}

func mustHash(t testing.TB, password string, p argon2idHash) string {
	t.Helper()
	h, err := hashArgon2id(password, p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustBcrypt(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// knownHashes reads testdata/known-hashes.txt.
func knownHashes(t *testing.T) []User {
	t.Helper()
	f, err := os.Open("testdata/known-hashes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var users []User
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		password, hash, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad line in known-hashes.txt: %q", line)
		}
		// Name carries the password for the test's convenience.
		users = append(users, User{Name: password, PasswordHash: hash})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 {
		t.Fatal("no vectors in known-hashes.txt")
	}
	return users
}

func TestKnownHashes(t *testing.T) {
	for _, v := range knownHashes(t) {
		t.Run(v.PasswordHash[:10], func(t *testing.T) {
			u, err := NewUsers([]User{{Name: "bob", PasswordHash: v.PasswordHash}})
			if err != nil {
				t.Fatal(err)
			}
			if !u.Verify("bob", v.Name) {
				t.Errorf("Verify rejects the right password for %s", v.PasswordHash)
			}
			if u.Verify("bob", v.Name+"x") {
				t.Errorf("Verify accepts a wrong password for %s", v.PasswordHash)
			}
		})
	}
}

func TestGeneratedHashes(t *testing.T) {
	def, err := HashArgon2id("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(def, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Errorf("HashArgon2id = %s, want the default parameters", def)
	}
	again, err := HashArgon2id("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if again == def {
		t.Error("two hashes of the same password are equal: salt not random")
	}
	bc := mustBcrypt(t, "correct horse")
	tests := []struct {
		name string
		hash string
	}{
		{"argon2id default", def},
		{"argon2id cheap", mustHash(t, "correct horse", cheapArgon2id)},
		{"bcrypt 2a", bc},
		{"bcrypt 2b", "$2b$" + bc[4:]},
		{"bcrypt 2y", "$2y$" + bc[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NewUsers([]User{{Name: "bob", PasswordHash: tt.hash}})
			if err != nil {
				t.Fatal(err)
			}
			if !u.Verify("bob", "correct horse") {
				t.Error("right password rejected")
			}
			for _, wrong := range []string{"correct hors", "correct horsE", "correct horse ", "x"} {
				if u.Verify("bob", wrong) {
					t.Errorf("wrong password %q accepted", wrong)
				}
			}
		})
	}

	for _, bad := range []string{"", "a\x00b"} {
		if _, err := HashArgon2id(bad); err == nil {
			t.Errorf("HashArgon2id(%q) succeeded", bad)
		}
	}
}

func TestMalformedHashes(t *testing.T) {
	const vector = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	const bc = "$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga"
	argon := func(params, salt, key string) string {
		return "$argon2id$v=19$" + params + "$" + salt + "$" + key
	}
	const salt, key = "c29tZXNhbHQ", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	tests := []struct {
		name    string
		hash    string
		wantErr string
	}{
		{"empty", "", "empty"},
		{"plaintext", "hunter2", "unsupported format"},
		{"ldap sha", "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "unsupported format"},
		{"md5crypt", "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "unsupported format"},
		{"sha512crypt", "$6$rounds=5000$salt$hash", "unsupported format"},
		{"bcrypt 2x", "$2x$" + bc[4:], "unsupported format"},
		{"bcrypt no minor", "$2$" + bc[4:], "unsupported format"},
		{"bcrypt short", bc[:59], "malformed bcrypt"},
		{"bcrypt long", bc + "a", "malformed bcrypt"},
		{"bcrypt bad character", bc[:40] + "!" + bc[41:], "invalid character"},
		{"bcrypt base64 padding", bc[:59] + "=", "invalid character"},
		{"bcrypt cost too low", "$2a$03$" + bc[7:], "cost"},
		{"bcrypt cost too high", "$2a$32$" + bc[7:], "cost"},
		{"bcrypt cost not a number", "$2a$1x$" + bc[7:], "malformed bcrypt"},
		{"bcrypt trailing newline", bc + "\n", "control"},
		{"leading space", " " + vector, "spaces"},
		{"non-ASCII", vector + "é", "non-ASCII"},
		{"argon2i", strings.Replace(vector, "argon2id", "argon2i", 1), "only the argon2id"},
		{"argon2d", strings.Replace(vector, "argon2id", "argon2d", 1), "only the argon2id"},
		{"no version", "$argon2id$m=65536,t=2,p=1$" + salt + "$" + key, "malformed argon2id"},
		{"version 16", strings.Replace(vector, "v=19", "v=16", 1), "v=19"},
		{"extra field", vector + "$x", "malformed argon2id"},
		{"parameters reordered", argon("t=2,m=65536,p=1", salt, key), "m="},
		{"parameter missing", argon("m=65536,t=2", salt, key), "m=...,t=...,p=..."},
		{"parameter extra", argon("m=65536,t=2,p=1,k=1", salt, key), "m=...,t=...,p=..."},
		{"parameter empty", argon("m=,t=2,p=1", salt, key), "m="},
		{"parameter signed", argon("m=+65536,t=2,p=1", salt, key), "m="},
		{"parameter negative", argon("m=65536,t=-2,p=1", salt, key), "t="},
		{"memory too large", argon("m=1048577,t=2,p=1", salt, key), "no greater than 1048576"},
		{"memory below 8p", argon("m=31,t=1,p=4", salt, key), "m >= 8*p"},
		{"time zero", argon("m=65536,t=0,p=1", salt, key), "t >= 1"},
		{"time too large", argon("m=65536,t=65,p=1", salt, key), "no greater than 64"},
		{"lanes zero", argon("m=65536,t=2,p=0", salt, key), "p >= 1"},
		{"lanes too many", argon("m=65536,t=2,p=256", salt, key), "no greater than 255"},
		{"salt padded", argon("m=65536,t=2,p=1", salt+"=", key), "salt"},
		{"salt too short", argon("m=65536,t=2,p=1", "c2FsdA", key), "salt of 4 bytes"},
		{"salt not base64", argon("m=65536,t=2,p=1", "c29t*XNhbHQ", key), "salt"},
		{"salt URL alphabet", argon("m=65536,t=2,p=1", "c29tZXNhbH_", key), "salt"},
		{"hash stray bits", argon("m=65536,t=2,p=1", salt, key[:len(key)-1]+"d"), "hash"},
		{"hash too short", argon("m=65536,t=2,p=1", salt, "CTFhFdXPJO1aFaMaO6Mm"), "hash of 15 bytes"},
		{"hash empty", argon("m=65536,t=2,p=1", salt, ""), "hash of 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewUsers([]User{{Name: "bob", PasswordHash: tt.hash}})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewUsers error = %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), `user "bob"`) {
				t.Errorf("error %q does not name the user", err)
			}
			if tt.hash != "" && strings.Contains(err.Error(), tt.hash) {
				t.Errorf("error %q quotes the hash", err)
			}
		})
	}
}

func TestVerifyNames(t *testing.T) {
	users := []User{
		{Name: "bob@Example.ORG", PasswordHash: mustHash(t, "bob-pw", cheapArgon2id)},
		{Name: "alice", PasswordHash: mustHash(t, "alice-pw", cheapArgon2id)},
		{Name: "Alice", PasswordHash: mustHash(t, "Alice-pw", cheapArgon2id)},
		{Name: "carol@a@example.org", PasswordHash: mustHash(t, "carol-pw", cheapArgon2id)},
	}
	u, err := NewUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, password string
		want           bool
	}{
		{"bob@Example.ORG", "bob-pw", true},
		{"bob@example.org", "bob-pw", true},
		{"bob@EXAMPLE.org", "bob-pw", true},
		{"Bob@example.org", "bob-pw", false},
		{"bob", "bob-pw", false},
		{"bob@example.org.", "bob-pw", false},
		{"bob@example.org", "alice-pw", false},
		{"alice", "alice-pw", true},
		{"Alice", "Alice-pw", true},
		{"Alice", "alice-pw", false},
		{"ALICE", "alice-pw", false},
		{"alice ", "alice-pw", false},
		{"carol@a@EXAMPLE.org", "carol-pw", true},
		{"carol@A@example.org", "carol-pw", false},
		{"mallory", "bob-pw", false},
		{"", "bob-pw", false},
		{"alice", "", false},
	}
	for _, tt := range tests {
		if got := u.Verify(tt.name, tt.password); got != tt.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tt.name, tt.password, got, tt.want)
		}
	}
}

func TestNewUsersNames(t *testing.T) {
	h := mustHash(t, "pw", cheapArgon2id)
	tests := []struct {
		name    string
		users   []User
		wantErr string
	}{
		{"empty name", []User{{Name: "", PasswordHash: h}}, "empty name"},
		{"NUL in name", []User{{Name: "bob\x00", PasswordHash: h}}, "NUL"},
		{"duplicate", []User{{Name: "bob", PasswordHash: h}, {Name: "bob", PasswordHash: h}}, "duplicate"},
		{"duplicate modulo domain case", []User{{Name: "bob@example.org", PasswordHash: h}, {Name: "bob@EXAMPLE.org", PasswordHash: h}}, "duplicate"},
		{"distinct local parts", []User{{Name: "bob@example.org", PasswordHash: h}, {Name: "Bob@example.org", PasswordHash: h}}, ""},
		{"no users", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NewUsers(tt.users)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if u.Verify("nobody", "pw") {
					t.Error("unknown user verified")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewUsers error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestDummyHash checks that unknown names are verified against a hash of the
// same cost as most users', which is what makes them indistinguishable by time.
func TestDummyHash(t *testing.T) {
	a1 := mustHash(t, "pw", cheapArgon2id)
	a2 := mustHash(t, "pw", cheapArgon2id)
	other := argon2idHash{memory: 128, time: 2, threads: 1}
	b := mustBcrypt(t, "pw")
	tests := []struct {
		name       string
		users      []User
		wantParams string
	}{
		{"no users", nil, "argon2id m=65536,t=3,p=4 salt=16 key=32"},
		{"single bcrypt", []User{{"a", b}}, "bcrypt cost=4"},
		{"argon2id majority", []User{{"a", b}, {"b", a1}, {"c", a2}}, "argon2id m=64,t=1,p=1 salt=16 key=32"},
		{"tie keeps the first", []User{{"a", mustHash(t, "pw", other)}, {"b", a1}}, "argon2id m=128,t=2,p=1 salt=16 key=32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := NewUsers(tt.users)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.dummy.params(); got != tt.wantParams {
				t.Errorf("dummy params %q, want %q", got, tt.wantParams)
			}
			for name, h := range u.byName {
				if u.dummy.verify([]byte("pw")) {
					t.Errorf("dummy hash matches user %s's password", name)
				}
				if h.params() == u.dummy.params() && equalHash(h, u.dummy) {
					t.Errorf("dummy hash is user %s's hash", name)
				}
			}
		})
	}
}

// spyHash records verifications.
type spyHash struct {
	match bool

	mu             sync.Mutex
	calls, running int
	maxRunning     int
}

func (h *spyHash) verify([]byte) bool {
	h.mu.Lock()
	h.calls++
	h.running++
	h.maxRunning = max(h.maxRunning, h.running)
	h.mu.Unlock()
	time.Sleep(time.Millisecond)
	h.mu.Lock()
	h.running--
	h.mu.Unlock()
	return h.match
}

func (h *spyHash) params() string       { return "spy" }
func (h *spyHash) dummy() (hash, error) { return h, nil }

func TestVerifyUnknownComputesHash(t *testing.T) {
	u, err := NewUsers([]User{{Name: "bob", PasswordHash: mustHash(t, "pw", cheapArgon2id)}})
	if err != nil {
		t.Fatal(err)
	}
	// Even a dummy that matched must not let an unknown name in.
	spy := &spyHash{match: true}
	u.dummy = spy
	if u.Verify("mallory", "pw") {
		t.Error("unknown name verified")
	}
	if spy.calls != 1 {
		t.Errorf("unknown name cost %d hash computations, want 1", spy.calls)
	}
	if !u.Verify("bob", "pw") || spy.calls != 1 {
		t.Errorf("known name: dummy computed (%d calls) or password rejected", spy.calls)
	}
}

func TestVerifyBoundsConcurrency(t *testing.T) {
	spy := &spyHash{match: true}
	u := &Users{byName: map[string]hash{"bob": spy}, dummy: spy, slots: make(chan struct{}, 2)}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { u.Verify("bob", "pw") })
	}
	wg.Wait()
	if spy.calls != 20 || spy.maxRunning > 2 {
		t.Errorf("%d verifications, at most %d at once; want 20, at most 2", spy.calls, spy.maxRunning)
	}
}

func equalHash(a, b hash) bool {
	switch a := a.(type) {
	case argon2idHash:
		b, ok := b.(argon2idHash)
		return ok && a.String() == b.String()
	case bcryptHash:
		b, ok := b.(bcryptHash)
		return ok && string(a.encoded) == string(b.encoded)
	}
	return false
}

// BenchmarkVerify reports the cost of verifying a known and an unknown name
// with the default argon2id parameters; the two should be close.
func BenchmarkVerify(b *testing.B) {
	h, err := HashArgon2id("pw")
	if err != nil {
		b.Fatal(err)
	}
	u, err := NewUsers([]User{{Name: "bob", PasswordHash: h}})
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"bob", "mallory"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				u.Verify(name, "wrong")
			}
		})
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga")
	f.Add("$2y$31$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2id$v=19$m=4294967295,t=1,p=1$$")
	f.Add("plaintext")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHash(s)
		if err != nil {
			if h != nil {
				t.Fatal("hash returned with an error")
			}
			return
		}
		switch h := h.(type) {
		case bcryptHash:
			if !strings.HasPrefix(s, "$2a$") && !strings.HasPrefix(s, "$2b$") && !strings.HasPrefix(s, "$2y$") {
				t.Fatalf("accepted %q as bcrypt", s)
			}
			if h.cost < bcrypt.MinCost || h.cost > bcrypt.MaxCost {
				t.Fatalf("accepted bcrypt cost %d", h.cost)
			}
		case argon2idHash:
			if h.memory > maxArgon2Memory || h.memory < 8*uint32(h.threads) || h.time < 1 || h.time > maxArgon2Time || h.threads < 1 ||
				len(h.salt) < minArgon2SaltLen || len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen {
				t.Fatalf("accepted out-of-bounds argon2id %s", h.params())
			}
			// The PHC encoding is canonical up to leading zeros in parameters.
			if got := h.String(); got != s && !strings.Contains(s, "=0") {
				t.Fatalf("re-encoded %q as %q", s, got)
			}
		default:
			t.Fatalf("unexpected hash type %T", h)
		}
	})
}
