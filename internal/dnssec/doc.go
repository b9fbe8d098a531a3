// Package dnssec validates DNS replies in-process (RFC 4033, RFC 4034, RFC 4035), from
// a trust anchor down, over an ordinary recursive resolver asked with DO and CD.
//
// mxward cannot assume that the machine it runs on has a validating resolver it can
// trust, and DANE (RFC 7672) is only as strong as the DNSSEC status of the records it
// uses. So the DNS client hands every reply to a Validator, which judges it the way a
// validating resolver would: it builds the chain of trust by asking for DS and DNSKEY
// records, checks every signature the answer relies on, and checks the NSEC (RFC 4035
// §5.4) or NSEC3 (RFC 5155 §8) proofs of denials and wildcard expansions.
//
// The result is one of the statuses of package dns: Secure, Insecure (provably
// unsigned, or signed with algorithms mxward does not implement), Bogus (anything that
// fails, including failures to fetch the records the chain needs) or Indeterminate
// (no trust anchor covers the name). Nothing an attacker on the path could have forged
// is ever called Secure, and stripping the signatures of a signed zone never turns it
// Insecure.
//
// Every verdict that may be cached carries the earliest expiration of the signatures
// it rests on, the reply's and those of the chain of trust (dns.Validation.Expires), so
// that no cache keeps a reply Secure past the signatures that made it so.
//
// Work per reply is bounded (signature verifications, NSEC3 hash computations,
// upstream queries), so that replies built to exhaust a validator (CVE-2023-50387
// "KeyTrap", CVE-2023-50868) end as Bogus rather than as a stalled delivery worker.
// Validated DNSKEY sets and the proven status of each zone cut are cached, so that warm
// lookups cost no further queries.
package dnssec
