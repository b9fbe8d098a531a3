// Package mtasts implements the sending side of SMTP MTA Strict Transport Security
// (RFC 8461): discovering a domain's policy through its _mta-sts TXT record, fetching the
// policy over HTTPS with Web PKI authentication, parsing it, caching it on disk so that
// it survives restarts, refreshing it before it expires, and matching MX host names
// against its patterns.
//
// The package answers one question for delivery, Manager.Lookup: which policy, if any,
// applies to a next-hop domain right now. Applying the answer (DANE precedence, the MX
// walk, certificate checks against the MX host) is the TLS decision's job; the rules it
// must follow are STS-17 … STS-25 in the reference semantics.
//
// An attacker on the path can block or forge the unauthenticated TXT record, so the
// record only ever triggers work: it never removes a policy. A policy ends when a fetched
// policy replaces it (for example one with mode "none", RFC 8461 §8.3), when it expires
// (max_age counted from the last successful fetch, RFC 8461 §3.2), or when the operator
// forgets it.
package mtasts
