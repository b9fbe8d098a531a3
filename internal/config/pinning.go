package config

import (
	"time"

	"mxward/internal/pin"
)

// Pinning is the [pinning] table: remembering which destinations completed STARTTLS
// and requiring TLS of them afterwards, where no DANE, MTA-STS, static list or
// tls_policy entry decides (decision 14.8; docs/pinning.md). It is off by default:
// a pinned domain whose STARTTLS disappears has its mail deferred instead of sent in
// clear, which protects against STARTTLS stripping but is a change in behaviour an
// operator has to choose, since a domain that drops TLS for good gets no mail from
// this host until the pin expires or is forgotten.
type Pinning struct {
	// Enabled creates pins from TLS deliveries and enforces the live ones.
	Enabled bool `toml:"enabled"`
	// MaxAge is how long a pin lasts after the last TLS delivery that refreshed it.
	MaxAge Duration `toml:"max_age"`
	// MinObservations is how many TLS deliveries, each at least MinInterval after the
	// previous one counted, make an observed domain pinned.
	MinObservations int `toml:"min_observations"`
	// MinInterval spaces the deliveries that count, so that one burst of mail (or one
	// lucky session) does not pin.
	MinInterval Duration `toml:"min_interval"`
	// Dir holds one JSON file per domain; derived from data_dir.
	Dir string `toml:"dir"`
}

// Defaults of [pinning].
const (
	defaultPinMaxAge          = Duration(pin.DefaultMaxAge)
	defaultPinMinObservations = pin.DefaultMinObservations
	defaultPinMinInterval     = Duration(pin.DefaultMinInterval)
	// maxPinObservations bounds min_observations to something a domain can reach.
	maxPinObservations = 1000
)

// validatePinning checks [pinning]:
//
//   - max_age is from 1h to 366d (pin.MaxMaxAge): a shorter pin protects little, a
//     longer one keeps deferring mail for a domain that changed hands;
//   - min_observations is from 1 to 1000;
//   - min_interval is longer than 0s and shorter than max_age when more than one
//     observation is needed, else no domain could ever be pinned.
//
// The values are checked whether or not pinning is enabled, so that enabling it later
// does not reveal an old mistake.
func (d *decoder) validatePinning(c *Config) {
	const table = "pinning"
	p := &c.Pinning
	if age := time.Duration(p.MaxAge); age < time.Hour || age > pin.MaxMaxAge {
		d.errorf(table+".max_age", "must be between 1h and %v (366d), not %v", pin.MaxMaxAge, age)
	}
	d.intRange(table+".min_observations", p.MinObservations, 1, maxPinObservations)
	d.positive(table+".min_interval", p.MinInterval)
	if p.MinObservations > 1 && p.MinInterval > 0 && p.MinInterval >= p.MaxAge {
		d.errorf(table+".min_interval", "%v is not shorter than max_age (%v): the entry would expire before a second observation counts, and nothing would ever be pinned",
			time.Duration(p.MinInterval), time.Duration(p.MaxAge))
	}
}
