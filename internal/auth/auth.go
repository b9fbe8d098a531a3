// Package auth owns the checking of SMTP AUTH credentials: the configured
// users and their password hashes, throttling of clients that keep failing,
// and decoding of the SASL PLAIN and LOGIN responses. The AUTH command
// exchange itself belongs to the SMTP server.
//
// Passwords are only ever stored as bcrypt or argon2id hashes. Verification
// takes about as long for a name that does not exist as for one that does, so
// that response times do not reveal which accounts exist.
package auth

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
)

// User is one account allowed to authenticate.
type User struct {
	Name string
	// PasswordHash is a bcrypt hash ($2a$, $2b$ or $2y$) or an argon2id hash in
	// PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
	PasswordHash string
}

// Users checks passwords against a fixed set of accounts. It is safe for
// concurrent use.
type Users struct {
	byName map[string]hash
	// dummy is verified instead when the name is unknown, so that an unknown
	// name costs the same time as a known one.
	dummy hash
	// slots bounds the number of hash computations running at once. An
	// argon2id verification allocates its full memory cost (64 MiB with the
	// default parameters); without a bound, a burst of AUTH attempts could
	// exhaust memory.
	slots chan struct{}
}

// NewUsers validates the accounts and prepares them for Verify. Names must be
// non-empty, free of NUL and unique once compared as Verify compares them;
// every hash must be bcrypt or argon2id (see User).
//
// Unknown names are verified against a dummy hash that has the parameters
// most users' hashes share, so that they cost the same time. A user whose hash
// has other parameters (another scheme or cost) can be told apart from an
// unknown name by timing; hashing all passwords the same way avoids that.
func NewUsers(users []User) (*Users, error) {
	u := &Users{
		byName: make(map[string]hash, len(users)),
		slots:  make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	count := make(map[string]int)
	var common hash
	for i, user := range users {
		if user.Name == "" {
			return nil, fmt.Errorf("user %d: empty name", i+1)
		}
		if strings.ContainsRune(user.Name, 0) {
			return nil, fmt.Errorf("user %q: name contains NUL", user.Name)
		}
		key := canonicalName(user.Name)
		if _, dup := u.byName[key]; dup {
			return nil, fmt.Errorf("user %q: duplicate name", user.Name)
		}
		h, err := parseHash(user.PasswordHash)
		if err != nil {
			return nil, fmt.Errorf("user %q: password hash: %w", user.Name, err)
		}
		u.byName[key] = h
		p := h.params()
		count[p]++
		if common == nil || count[p] > count[common.params()] {
			common = h
		}
	}
	if common == nil {
		common = defaultArgon2id(make([]byte, argon2SaltLen), make([]byte, argon2KeyLen))
	}
	dummy, err := common.dummy()
	if err != nil {
		return nil, fmt.Errorf("prepare dummy password hash: %w", err)
	}
	u.dummy = dummy
	return u, nil
}

// Verify reports whether password is the password of the user called name.
//
// Names are compared exactly, except that when a name contains "@" the part
// after the last "@" (the domain) is compared case-insensitively, as domains
// are: "Bob@Example.ORG" matches a user configured as "Bob@example.org", but
// "bob@example.org" does not.
//
// An unknown name costs one hash computation like a known one. The map lookup
// that precedes it is not constant-time, but its cost is negligible next to
// the hash.
func (u *Users) Verify(name, password string) bool {
	if password == "" {
		return false // independent of name, so it reveals nothing
	}
	h, known := u.byName[canonicalName(name)]
	if !known {
		h = u.dummy
	}
	u.slots <- struct{}{}
	ok := h.verify([]byte(password))
	<-u.slots
	return known && ok
}

// canonicalName is the form in which names are compared: the domain of an
// address-like name is lowercased.
func canonicalName(name string) string {
	i := strings.LastIndexByte(name, '@')
	if i < 0 {
		return name
	}
	return name[:i+1] + strings.ToLower(name[i+1:])
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}
