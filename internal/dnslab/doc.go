// Package dnslab runs a real DNSSEC tree on loopback, so that mxward's in-process
// validator can be compared with a validator the world already trusts.
//
// A lab is a set of zones, from a lab root "." down, signed by the real signers
// (ldns-signzone and BIND's dnssec-signzone, with keys from their own key
// generators), served by NSD, and resolved by a validating Unbound whose only
// trust anchor is the lab root's DS. Zones can be broken on purpose (expired or
// future signatures, a corrupted or missing RRSIG, a DS matching no key, a missing
// DNSKEY RRset, forged unsigned records), and a zone can sit behind an in-process
// proxy that forges replies a correct server never sends (denials made for another
// name, wildcard answers without their proof).
//
// A differential test asks Unbound (Lab.Verdict) and mxward the same questions and
// requires the same status. DefaultTree is the standard tree with its questions;
// TestDefaultTreeUnbound proves that Unbound reaches the verdict the lab intends
// for each of them, so that a disagreement found later is mxward's to explain.
//
// Like internal/testpeer, the package is meant for tests only.
//
// # Required Debian packages
//
//	apt-get install -y --no-install-recommends nsd unbound ldnsutils bind9-utils
//
// The lab never uses or touches the packages' system services, if they run: it
// starts private instances on free loopback ports. Without the programs
// Start skips the test, or fails it under MXWARD_REQUIRE_INTEROP=1 (see
// testpeer.RequireTool). Verified with NSD 4.6.1, Unbound 1.17.1, ldns 1.8.3 and
// BIND 9.18 on Debian 12.
//
// # How the lab is wired
//
// NSD serves every zone from one address. Unbound has a stub-zone for every lab
// zone, "." included, each naming NSD's address and port (or the zone's proxy), so
// a query can go nowhere but loopback: not to the real root, not to port 53. A DS
// question goes to the stub of the zone above the delegation, which is how Unbound
// finds each link of the chain of trust. The lab's root hints file names no server,
// because Unbound prefers root hints to a stub for "." and hints cannot carry a
// port. With Options.PlainResolver a second Unbound, with the same stubs but only
// its iterator module (no trust anchor, no validation), serves as the upstream of
// an in-process validator that is to be measured against the first. The daemons run
// in the foreground as children of the test, with every file they write in Lab.Dir,
// and are stopped by process id when the test ends.
//
// # Determinism
//
// Signatures are made for Lab.Now: sound zones are valid from a day before it to
// thirty days after, damaged windows miss it by two days. SOA serials, TTLs and
// NSEC3 parameters are fixed. Keys and ECDSA signatures are random, so replies
// differ between runs in their key material only; a test that records replies
// stores them with Lab.Now and validates them offline at that instant.
//
// # What Unbound 1.17 was seen to do
//
// Found while building DefaultTree, and encoded in its cases:
//   - An answer whose closest encloser proof relies on an opt-out NSEC3 covering
//     the next closer name gets no AD bit (RFC 5155 §9.2): NXDOMAIN in an opt-out
//     zone, and the DS denial of a delegation left out of the chain, are insecure.
//   - ldns-signzone -p only sets the opt-out flag; every unsigned delegation keeps
//     a matching NSEC3, so its DS denial stays secure. dnssec-signzone -A leaves
//     such delegations out of the chain.
//   - NSEC3 with more iterations than val-nsec3-keysize-iterations allows (150)
//     makes denials insecure, while positive answers from the zone stay secure.
//   - An unsigned record added at a new name is judged while Unbound looks for a
//     zone cut there: the missing DS proof makes it bogus with EDE 9 (DNSKEY
//     Missing), not EDE 10 (RRSIGs Missing), which an unsigned RRset at a signed
//     name gets.
package dnslab
