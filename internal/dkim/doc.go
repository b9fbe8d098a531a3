// Package dkim signs and verifies mail with DomainKeys Identified Mail (RFC 6376), with
// the algorithms rsa-sha256 (RFC 6376 §3.3, with the key sizes of RFC 8301) and
// ed25519-sha256 (RFC 8463).
//
// mxward signs the mail it sends to other domains so that receivers can tie the
// message to the domain in its From field, which is what DMARC (RFC 7489) aligns on.
// A Signer holds one key for one domain and selector; SignMessage picks the signers
// for a message's From domain, reads the message once and returns the DKIM-Signature
// header fields to put in front of it. Keys are loaded from PEM files or generated, and
// KeyRecord gives the TXT record to publish at <selector>._domainkey.<domain>.
//
// The Verifier checks signatures on a message, looking keys up through a function the
// caller supplies, so that tests need no DNS and inbound mail can later use the
// delivery resolver. It is strict: a signature with l= (a body length, which lets
// anyone append to a signed message), rsa-sha1 (RFC 8301 §3.1), an RSA key shorter
// than 1024 bits (RFC 8301 §3.2), an h= without From (RFC 6376 §5.4) or an x= in the
// past fails permanently. A key lookup that fails for any reason other than the name
// having no key record fails temporarily (RFC 6376 §6.1.2).
//
// Messages are read as the SMTP client sends them: a bare CR or LF ends a line just as
// CRLF does (the client sends each as CRLF), and an unterminated last line is
// terminated. The signature therefore covers exactly what goes on the wire.
//
// Not supported: the z= tag (copied header fields, only for diagnostics), signing with
// l=, the obsolete DomainKeys g= tag, and query methods other than dns/txt.
package dkim
