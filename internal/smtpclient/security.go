package smtpclient

import (
	"crypto/tls"
)

// TLSMode says whether a session must, may or must not use STARTTLS. It is decided by
// internal/tlspolicy for each next hop and host; the client only applies it.
type TLSMode int

const (
	// TLSDisabled never sends STARTTLS (operator level "none").
	TLSDisabled TLSMode = iota
	// TLSOpportunistic uses STARTTLS when offered and continues in plaintext when it is not
	// (level "may"). A failed handshake is an error of the connection; whether to reconnect
	// in plaintext is the caller's decision, not the client's.
	TLSOpportunistic
	// TLSRequired refuses to send mail unless TLS is established and Verify accepts it.
	TLSRequired
)

// Security is the transport-security requirement for one session.
type Security struct {
	Mode TLSMode
	// ServerName is sent as SNI; "" sends none (an IP address is never sent as SNI).
	ServerName string
	// Verify inspects the handshake result before any mail is sent (RFC 3207 §4.1, ST-06).
	// It returns how the peer was authenticated ("none", "webpki", "fingerprint", later
	// "dane-ee", "dane-ta") or an error, which aborts the session with QUIT. nil accepts
	// any certificate and reports "none": the opportunistic case, where a self-signed,
	// expired or misnamed certificate is still better than plaintext.
	Verify func(cs tls.ConnectionState) (auth string, err error)
	// Config is the base TLS configuration (versions, root pool for Verify's use, session
	// cache). The client copies it, sets InsecureSkipVerify (verification is Verify's job)
	// and ServerName. nil means defaults (TLS 1.2 minimum).
	Config *tls.Config
}

// TLSInfo is what the session achieved, for the delivery record.
type TLSInfo struct {
	// Level is "none" (plaintext), "untrusted" (TLS, peer not authenticated) or "verified"
	// (TLS and Verify authenticated the peer).
	Level   string
	Version string // e.g. "TLSv1.3"; "" without TLS
	Cipher  string // e.g. "TLS_AES_128_GCM_SHA256"; "" without TLS
	Auth    string // as returned by Verify; "none" without authentication
	// Offered reports whether the server advertised STARTTLS in its first EHLO reply.
	Offered bool
}
