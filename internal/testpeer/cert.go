package testpeer

import "mxward/internal/labca"

// The certificates of test peers come from labca, which the lab shares with mxward's
// own binary (mxward lab); these names keep the test harness's vocabulary.
type (
	// Cert is a certificate with its key; see labca.Cert.
	Cert = labca.Cert
	// CA is a test certificate authority; see labca.CA.
	CA = labca.CA
)

// NewCert generates a self-signed certificate for hostname; see labca.NewCert.
func NewCert(hostname string) (*Cert, error) { return labca.NewCert(hostname) }

// NewCA creates a test certificate authority; see labca.NewCA.
func NewCA(name string) (*CA, error) { return labca.NewCA(name) }
