package spool

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// An ID is 21 characters of base32hex in lower case: 11 characters (55 bits) of
// microseconds since the Unix epoch, then 10 characters (50 bits) of randomness. The
// alphabet sorts in ASCII order, so IDs sort by creation time, and a single case keeps
// them distinct on case-insensitive file systems. The time part makes IDs from
// different processes and restarts disjoint unless they fall in the same microsecond;
// the random part makes a collision within one microsecond negligible.
const (
	idAlphabet = "0123456789abcdefghijklmnopqrstuv"
	idTimeLen  = 11
	idRandLen  = 10
	idLen      = idTimeLen + idRandLen

	// shardLen is how many leading characters of an ID name its shard directory.
	// Six characters leave 25 bits of microseconds, so one shard spans about 33.5 s:
	// at 1,000 messages/s a shard holds some 33,000 files, and a slow trickle does not
	// leave millions of tiny directories.
	shardLen = 6
	// shardSpan is the time one shard covers.
	shardSpan = time.Duration(1<<((idTimeLen-shardLen)*5)) * time.Microsecond
)

// idGen hands out IDs whose time part strictly increases within one process, even
// when the clock stands still or steps back.
type idGen struct {
	mu   sync.Mutex
	last uint64
}

func (g *idGen) next(now time.Time) ID {
	var us uint64
	if t := now.UnixMicro(); t > 0 {
		us = uint64(t)
	}
	g.mu.Lock()
	if us <= g.last {
		us = g.last + 1
	}
	g.last = us
	g.mu.Unlock()

	var b [8]byte
	rand.Read(b[:]) // never fails, see crypto/rand.Read
	r := binary.LittleEndian.Uint64(b[:]) & (1<<(idRandLen*5) - 1)

	var buf [idLen]byte
	encodeBase32(buf[:idTimeLen], us)
	encodeBase32(buf[idTimeLen:], r)
	return ID(buf[:])
}

// encodeBase32 writes v big-endian into dst, five bits per character.
func encodeBase32(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = idAlphabet[v&31]
		v >>= 5
	}
}

// base32Value returns the value of one ID character, or -1.
func base32Value(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'v':
		return int(c-'a') + 10
	}
	return -1
}

// parseID checks that s is a well-formed ID and returns the time it was made. Every
// path built from an ID goes through here first, so a malformed ID from the command
// line can never name a file outside the spool.
func parseID(s string) (time.Time, bool) {
	if len(s) != idLen {
		return time.Time{}, false
	}
	var us uint64
	for i := 0; i < len(s); i++ {
		v := base32Value(s[i])
		if v < 0 {
			return time.Time{}, false
		}
		if i < idTimeLen {
			us = us<<5 | uint64(v)
		}
	}
	return time.UnixMicro(int64(us)).UTC(), true
}

func validID(id ID) bool {
	_, ok := parseID(string(id))
	return ok
}

// validShard reports whether name can be a shard directory.
func validShard(name string) bool {
	if len(name) != shardLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if base32Value(name[i]) < 0 {
			return false
		}
	}
	return true
}

// shard returns the shard directory name of a well-formed ID.
func (id ID) shard() string { return string(id[:shardLen]) }

// shardAt returns the name of the shard that IDs made at t fall in.
func shardAt(t time.Time) string {
	var us uint64
	if v := t.UnixMicro(); v > 0 {
		us = uint64(v)
	}
	var buf [idTimeLen]byte
	encodeBase32(buf[:], us)
	return string(buf[:shardLen])
}
