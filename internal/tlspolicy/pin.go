package tlspolicy

import (
	"fmt"
	"time"

	"mxward/internal/pin"
	"mxward/internal/smtpclient"
)

// SourcePin: a live pin of the next-hop domain decided (internal/pin): the domain
// completed STARTTLS with us before, so TLS is required, with any certificate.
const SourcePin Source = "pin"

// PinUse describes the pin that decided a host (Decision.Source SourcePin).
type PinUse struct {
	Entry pin.Entry
	// Summary says it in words for the attempt record: "pinned: STARTTLS completed 5
	// times since 2026-11-02, expires 2026-12-28".
	Summary string
}

// pinSummary is the words of a pin for reasons and records.
func pinSummary(e pin.Entry) string {
	return fmt.Sprintf("pinned: STARTTLS completed %d times since %s, expires %s",
		e.Count, e.FirstSeen.UTC().Format(time.DateOnly), e.Expires.UTC().Format(time.DateOnly))
}

// decidePin applies a live pin of the next-hop domain (decision 14.8: after DANE,
// MTA-STS and the list, before opportunistic TLS). d is a decision none of those made
// binding: opportunistic, or an MTA-STS policy or list entry in mode testing, which
// asks for nothing (STS-23) and so does not stand in the pin's way; what testing
// records is kept.
//
// A pin requires TLS (level encrypt) and authenticates nothing: it stops STARTTLS
// stripping and plaintext, not a forged MX or a forged certificate. Without STARTTLS
// the session fails with 4.7.4 and delivery defers (decision 14.7: never a bounce), and
// a failed handshake gets no plaintext retry, since the session is not opportunistic.
//
// A pin store that cannot be read must not stop mail: the error is treated as no pin,
// and said in the reason and notes (delivery logs it too). It weakens nothing that
// worked before pinning existed.
func decidePin(d Decision, in Input) Decision {
	if in.Literal || in.Pin == nil {
		return d
	}
	e, live, err := in.Pin()
	if err != nil {
		n := fmt.Sprintf("pin: lookup failed, delivering without it: %v", err)
		d.Reason += "; " + n
		d.Notes = append(d.Notes, n)
		return d
	}
	if !live {
		return d
	}
	use := &PinUse{Entry: e, Summary: pinSummary(e)}
	d.Source, d.Level, d.Pin = SourcePin, LevelEncrypt, use
	d.Reason += "; " + use.Summary + " (decision 14.8)"
	// The SNI and, in testing mode, the recording check stay as they were: only the
	// mode changes.
	d.Security.Mode = smtpclient.TLSRequired
	return d
}
