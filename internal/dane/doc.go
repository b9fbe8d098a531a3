// Package dane implements the client side of DANE for SMTP (RFC 7672, building on
// RFC 6698, RFC 7671 and the acronyms of RFC 7218): which names may carry TLSA records
// for an MX host, what a TLSA lookup result obliges the client to do, which TLSA records
// are usable, and whether a server's certificate chain matches them.
//
// The package does no I/O of its own. LookupHost asks a dns.Resolver for TLSA records;
// everything else is a pure function of DNS results and certificates, so every rule of
// the reference semantics (DANE-01 … DANE-26) can be tested offline with a table.
//
// The steps for one MX host, in the order delivery takes them:
//
//  1. Resolve the host's addresses (DANE-09), then call LookupHost with the result. It
//     picks the TLSA base-domain candidates (Candidates, DANE-10, DANE-11, DANE-14),
//     queries `_25._tcp.<candidate>` for each in turn (DANE-12, DANE-13), filters the
//     records (Usable, DANE-15 … DANE-17) and classifies the outcome (RFC 7672 §2.2):
//     Authenticate, EncryptOnly, NotApplicable or Unreachable.
//  2. For Authenticate, send SNI carrying Host.BaseDomain (DANE-24) and check the
//     handshake with Verifier (or Check), giving it the reference identifiers from
//     ReferenceIDs (DANE-22). A mismatch is a temporary failure of that host, never a
//     reason to fall back to unauthenticated TLS or plaintext (DANE-04, DANE-19).
//  3. For EncryptOnly, TLS is mandatory but any certificate is accepted (DANE-18).
//
// Which record authenticated a session is reported by Check in a Match, for the attempt
// log; Verifier wraps Check in the closure form smtpclient.Security.Verify takes:
//
//	var m dane.Match
//	sec.Verify = func(cs tls.ConnectionState) (string, error) {
//		var err error
//		m, err = dane.Check(cs.PeerCertificates, host.Records, refIDs, time.Now())
//		return m.Auth, err
//	}
package dane
