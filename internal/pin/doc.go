// Package pin remembers which destinations completed STARTTLS, so that mxward can
// require TLS of them afterwards: HSTS for SMTP, trust on first use of the fact "this
// domain does TLS".
//
// Opportunistic STARTTLS (RFC 3207) has a well-known hole: a man in the middle who
// removes "250-STARTTLS" from the EHLO reply, or answers STARTTLS with an error, gets
// the mail in clear, and the sender cannot tell the attack from a server that never did
// TLS. DANE, MTA-STS and a static policy list close it for the domains that publish
// them or are listed; a pin closes it for the others, for as long as the domain keeps
// doing TLS with us. A pin is created by deliveries that completed TLS to a host of
// the destination, at least MinObservations of them at least MinInterval apart, so one
// lucky session does not pin; it is refreshed by each further such delivery and expires
// MaxAge after the last one. A delivery in clear never lowers or removes a pin (that is
// the point: the attack looks exactly like such a delivery); only expiry or the
// operator (Store.Forget, `mxward pin forget`) does.
//
// A pin says nothing about who the peer is: under a pin mxward requires TLS with any
// certificate (level encrypt), as opportunistic TLS accepts any certificate. It does not
// defend against a forged MX record or a forged certificate, only against STARTTLS
// stripping and, by requiring TLS, passive eavesdropping. Deciding when a pin applies
// (after DANE, MTA-STS, the list and the operator's table, decision 14.8) is
// internal/tlspolicy's business; this package only keeps the facts.
//
// The store is one JSON file per domain in a directory, written atomically (temporary
// file, fsync, rename, fsync of the directory) so that a crash leaves the old or the
// new entry. Read-modify-write updates hold an advisory lock on the directory, so the
// daemon and the CLI may use the same directory at once without one undoing the other
// (a `pin forget` racing a delivery's refresh). A file that cannot be read back as an
// entry is logged and ignored, never trusted.
package pin
