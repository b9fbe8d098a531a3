package auth

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters of hashes made by HashArgon2id: the second recommended option of
// RFC 9106 section 4, for hosts that cannot spare 2 GiB per verification.
const (
	argon2Memory  = 64 * 1024 // KiB
	argon2Time    = 3
	argon2Threads = 4
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// Limits on argon2id hashes accepted from configuration. The upper bounds keep
// a mistyped parameter from turning every AUTH attempt into a denial of
// service; the lower bounds are those of RFC 9106 and common practice.
const (
	maxArgon2Memory  = 1 << 20 // KiB: 1 GiB
	maxArgon2Time    = 64
	minArgon2SaltLen = 8
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 128
)

// hash is a parsed password hash.
type hash interface {
	verify(password []byte) bool
	// params identifies the scheme and cost parameters: hashes with equal
	// params take the same time to verify.
	params() string
	// dummy returns a hash with the same params that no password will match
	// in practice, to verify against for unknown names.
	dummy() (hash, error)
}

// parseHash parses a stored password hash. Errors never quote the hash.
func parseHash(s string) (hash, error) {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return nil, errors.New("contains spaces, control or non-ASCII characters")
		}
	}
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$argon2"):
		return nil, errors.New("only the argon2id variant of argon2 is supported")
	case s == "":
		return nil, errors.New("empty")
	default:
		return nil, errors.New("unsupported format: want bcrypt ($2b$...) or argon2id ($argon2id$...)")
	}
}

// bcryptHash is a bcrypt hash. $2a$, $2b$ and $2y$ differ only in how
// historical implementations mishandled passwords with 8-bit characters or
// longer than 255 bytes, so one implementation verifies all three. bcrypt
// ignores password bytes past the 72nd.
type bcryptHash struct {
	encoded []byte
	cost    int
}

const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(s string) (hash, error) {
	// $2b$NN$ then 22 characters of salt and 31 of hash.
	if len(s) != 60 || s[6] != '$' {
		return nil, errors.New("malformed bcrypt hash: want $2b$NN$ followed by 53 characters")
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return nil, errors.New("malformed bcrypt hash: invalid character in salt or hash")
		}
	}
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("malformed bcrypt hash: %w", err)
	}
	return bcryptHash{encoded: []byte(s), cost: cost}, nil
}

func (h bcryptHash) verify(password []byte) bool {
	// CompareHashAndPassword compares in constant time.
	return bcrypt.CompareHashAndPassword(h.encoded, password) == nil
}

func (h bcryptHash) params() string { return "bcrypt cost=" + strconv.Itoa(h.cost) }

func (h bcryptHash) dummy() (hash, error) {
	pw, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	enc, err := bcrypt.GenerateFromPassword(pw, h.cost)
	if err != nil {
		return nil, err
	}
	return bcryptHash{encoded: enc, cost: h.cost}, nil
}

// argon2idHash is an argon2id hash (RFC 9106), version 0x13.
type argon2idHash struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgon2id parses the PHC string format as written by the reference
// implementation: $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>,
// salt and hash in standard base64 without padding. The version is required
// and the parameters must appear in that order.
func parseArgon2id(s string) (hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 {
		return nil, errors.New("malformed argon2id hash: want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if f[2] != "v=19" {
		return nil, errors.New("malformed argon2id hash: want version v=19")
	}
	p := strings.Split(f[3], ",")
	if len(p) != 3 {
		return nil, errors.New("malformed argon2id hash: want parameters m=...,t=...,p=...")
	}
	var h argon2idHash
	var err error
	if h.memory, err = param(p[0], "m=", maxArgon2Memory); err != nil {
		return nil, err
	}
	if h.time, err = param(p[1], "t=", maxArgon2Time); err != nil {
		return nil, err
	}
	threads, err := param(p[2], "p=", 255)
	if err != nil {
		return nil, err
	}
	h.threads = uint8(threads)
	if h.time < 1 || h.threads < 1 || h.memory < 8*uint32(h.threads) {
		return nil, errors.New("malformed argon2id hash: want t >= 1, p >= 1 and m >= 8*p")
	}
	b64 := base64.RawStdEncoding.Strict()
	if h.salt, err = b64.DecodeString(f[4]); err != nil {
		return nil, fmt.Errorf("malformed argon2id hash: salt: %w", err)
	}
	if len(h.salt) < minArgon2SaltLen {
		return nil, fmt.Errorf("malformed argon2id hash: salt of %d bytes, want at least %d", len(h.salt), minArgon2SaltLen)
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil {
		return nil, fmt.Errorf("malformed argon2id hash: hash: %w", err)
	}
	if len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen {
		return nil, fmt.Errorf("malformed argon2id hash: hash of %d bytes, want %d to %d", len(h.key), minArgon2KeyLen, maxArgon2KeyLen)
	}
	return h, nil
}

// param parses one "name=decimal" argon2id parameter no greater than max.
func param(s, name string, max uint32) (uint32, error) {
	v, ok := strings.CutPrefix(s, name)
	if !ok {
		return 0, fmt.Errorf("malformed argon2id hash: want parameter %s...", name)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n > uint64(max) {
		return 0, fmt.Errorf("malformed argon2id hash: parameter %s must be a number no greater than %d", name, max)
	}
	return uint32(n), nil
}

func (h argon2idHash) verify(password []byte) bool {
	k := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1
}

func (h argon2idHash) params() string {
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d salt=%d key=%d", h.memory, h.time, h.threads, len(h.salt), len(h.key))
}

func (h argon2idHash) dummy() (hash, error) {
	salt, err := randomBytes(len(h.salt))
	if err != nil {
		return nil, err
	}
	key, err := randomBytes(len(h.key))
	if err != nil {
		return nil, err
	}
	d := h
	d.salt, d.key = salt, key
	return d, nil
}

// String returns the hash in PHC string format.
func (h argon2idHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.memory, h.time, h.threads,
		base64.RawStdEncoding.EncodeToString(h.salt), base64.RawStdEncoding.EncodeToString(h.key))
}

func defaultArgon2id(salt, key []byte) argon2idHash {
	return argon2idHash{memory: argon2Memory, time: argon2Time, threads: argon2Threads, salt: salt, key: key}
}

// HashArgon2id hashes password for storage in a User: argon2id with 64 MiB,
// 3 passes, 4 lanes, a random 16-byte salt and a 32-byte output, in PHC
// string format. Empty passwords and passwords containing NUL are refused,
// as SASL PLAIN could never carry them.
func HashArgon2id(password string) (string, error) {
	return hashArgon2id(password, defaultArgon2id(nil, nil))
}

// hashArgon2id hashes password with the cost parameters of p.
func hashArgon2id(password string, p argon2idHash) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	if strings.ContainsRune(password, 0) {
		return "", errors.New("hash password: password contains NUL")
	}
	salt, err := randomBytes(argon2SaltLen)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	p.salt = salt
	p.key = argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, argon2KeyLen)
	return p.String(), nil
}
