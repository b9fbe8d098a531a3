package dane_test

import (
	"bytes"
	"fmt"

	"mxward/internal/dane"
	"mxward/internal/dns"
)

// Usable applies RFC 7672 §3.1.3 and RFC 7671 §9 to a published RRset: PKIX usages and
// malformed digests are dropped, and of the DANE-EE SPKI digests only SHA2-512 is kept.
func ExampleUsable() {
	rrset := []dns.TLSA{
		{Usage: 3, Selector: 1, MatchingType: 1, Data: bytes.Repeat([]byte{0xab}, 32)},
		{Usage: 3, Selector: 1, MatchingType: 2, Data: bytes.Repeat([]byte{0xcd}, 64)},
		{Usage: 1, Selector: 1, MatchingType: 1, Data: bytes.Repeat([]byte{0xef}, 32)},
		{Usage: 2, Selector: 0, MatchingType: 1, Data: bytes.Repeat([]byte{0x01}, 31)},
	}
	usable, dropped := dane.Usable(rrset, nil)
	for _, r := range usable {
		fmt.Println("use ", dane.Format(r))
	}
	for _, d := range dropped {
		fmt.Println("drop", dane.Format(d.Record), "-", d.Reason)
	}
	// Output:
	// use  3 1 2 cdcdcdcdcdcd…
	// drop 3 1 1 abababababab… - DANE-17: digest agility: SHA2-256 ignored, the RRset has DANE-EE SPKI SHA2-512 records (RFC 7671 §9)
	// drop 1 1 1 efefefefefef… - DANE-15: usage PKIX-EE(1) is not usable for SMTP (RFC 7672 §3.1.3)
	// drop 2 0 1 010101010101… - DANE-16: SHA2-256 digest is 31 bytes, want 32 (RFC 7671 §9)
}

// ReferenceIDs after a secure MX lookup, and over an insecure one (half-DANE).
func ExampleReferenceIDs() {
	d := dane.Destination{NextHop: "example.test", MXSecure: true, MXHost: "mx.example.test"}
	fmt.Println(dane.ReferenceIDs(d, "mx.example.test"))
	d.MXSecure = false
	fmt.Println(dane.ReferenceIDs(d, "mx.example.test"))
	// Output:
	// [mx.example.test example.test]
	// [mx.example.test]
}
