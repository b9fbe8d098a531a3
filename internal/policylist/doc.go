// Package policylist reads static TLS policy lists: the STARTTLS Everywhere list that the
// EFF published (format version "0.1") and a small mxward file of the operator's own
// entries. A list names mail domains known to support STARTTLS with a certificate valid
// for their MX hosts, so that the first contact with such a domain is protected before
// any MTA-STS policy has been cached (reference semantics §7, LIST-06).
//
// The package does no network I/O. ParseEFF and ParseLocal read a list, Load reads one
// from a file, Install stores a list in a directory atomically and refuses a rollback to
// an older list (LIST-04), and List.Lookup answers for one next-hop domain.
//
// # Matching
//
// Domains are matched exactly: an entry for example.com says nothing about
// lists.example.com (LIST-01). An MX pattern is a full host name, matched exactly, or a
// suffix written with a leading dot, ".example.net", which matches any name below
// example.net at any depth but not example.net itself (decision 5, LIST-02; MTA-STS
// wildcards, which cover one label, are a different rule).
//
// # Expiry
//
// A list whose expires time has passed no longer applies: Lookup returns an error that
// satisfies errors.Is(err, ErrExpired) (an *ExpiredError) and no entry. The caller logs
// it at error level, so the operator is alerted, and continues as if there were no list,
// with opportunistic TLS (LIST-04). Lists from the operator's own file never expire
// unless the file says so.
//
// # Precedence
//
// A list entry is the weakest of the authenticated sources (decision 8): a secure usable
// TLSA RRset decides first (DANE), then a live or cached MTA-STS policy in mode enforce
// or testing, and only then the static list; an explicit per-domain policy set by the
// operator overrides all of them. When MTA-STS and the list disagree, MTA-STS wins
// (LIST-06). This package does not see DANE or MTA-STS; the caller must consult it only
// after both have said nothing.
//
// # Applying an entry
//
// For a domain in mode enforce (LIST-03) the MX host must match one of the entry's
// patterns (Entry.MatchesMX), and the server's certificate must chain to a trusted root,
// be unexpired and carry a name that matches one of the patterns, over TLS 1.2 or later
// (Entry.MinVersion). Entry.Policy gives this requirement in the vocabulary of
// smtp_tls_policy_maps ("secure match=mx1.example.com:.example.net"), as the EFF's
// generator wrote it for Postfix. Failing it defers the message, never bounces it
// (decision 7). In mode testing the same checks are made, the failure is logged and
// reported, and the message is delivered anyway.
//
// A List is immutable once parsed, so any number of goroutines may call Lookup at once;
// Current holds the list in force and lets a reload replace it without locks.
package policylist
