package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"mxward/internal/tlscert"
)

const dnsRecordsUsage = `usage: mxward dns-records [--config FILE] [--json]

Prints the DNS records to publish for the domains mxward receives mail for (local.domains)
and for its host name, and why:

  TLSA 3 1 1    DANE-EE records for the current key and the next key (RFC 7672 §3.1.1).
                Publishing the next key's record ahead makes a key rollover safe:
                "mxward tls rollover" switches keys only once it is visible in DNS.
  MX            the host name as the domains' mail exchanger.
  MTA-STS       the _mta-sts TXT record and the policy text to serve at
                https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461).
  TLS-RPT       the _smtp._tls TXT record asking senders for TLS reports (RFC 8460).

The TLSA records only protect mail if the zone holding the host name is DNSSEC-signed.
`

// recordsJSON is the --json output of dns-records; its field names are stable.
type recordsJSON struct {
	Hostname string       `json:"hostname"`
	Records  []recordJSON `json:"records"`
	// Policies maps each domain to the MTA-STS policy text to serve.
	Policies map[string]string `json:"mta_sts_policies"`
}

type recordJSON struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	Why   string `json:"why"`
}

func cmdDNSRecords(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfgPath, asJSON, _, err := commandArgs("dns-records", dnsRecordsUsage, args, 0, true, stderr)
	if err != nil {
		return err
	}
	cfg, _, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	certs, err := tlscert.Load(ctx, tlscert.Options{
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, DataDir: cfg.DataDir, Hostname: cfg.Hostname,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fmt.Errorf("dns-records: load the TLS key: %w", err)
	}
	host := strings.TrimSuffix(cfg.Hostname, ".") + "."
	out := recordsJSON{Hostname: cfg.Hostname, Policies: map[string]string{}}
	add := func(name, typ, value, why string) {
		out.Records = append(out.Records, recordJSON{Name: name, Type: typ, Value: value, Why: why})
	}
	tlsaName := "_25._tcp." + host
	add(tlsaName, "TLSA", "3 1 1 "+certs.TLSA311(), "DANE-EE for the key in service (RFC 7672 §3.1.1)")
	if next := certs.NextTLSA311(); next != "" {
		add(tlsaName, "TLSA", "3 1 1 "+next, "DANE-EE for the next key, published ahead so that `mxward tls rollover` never breaks DANE")
	}
	if prev := certs.PreviousTLSA311(); prev != "" {
		add(tlsaName, "TLSA", "3 1 1 "+prev, "DANE-EE for the key before the last rollover: keep it until its TTL has passed since the switch, then remove it")
	}
	for _, d := range cfg.Local.Domains {
		dom := strings.TrimSuffix(d, ".") + "."
		add(dom, "MX", "10 "+host, "mxward receives mail for "+d)
		policy := fmt.Sprintf("version: STSv1\r\nmode: testing\r\nmx: %s\r\nmax_age: 604800\r\n", strings.TrimSuffix(host, "."))
		sum := sha256.Sum256([]byte(policy))
		add("_mta-sts."+dom, "TXT", fmt.Sprintf("\"v=STSv1; id=%s\"", hex.EncodeToString(sum[:8])),
			"announces the MTA-STS policy; the id changes whenever the policy text does (RFC 8461 §3.1)")
		out.Policies[d] = policy
		add("_smtp._tls."+dom, "TXT", fmt.Sprintf("\"v=TLSRPTv1; rua=mailto:tlsrpt@%s\"", strings.TrimSuffix(d, ".")),
			"asks senders for daily TLS reports (RFC 8460 §3)")
	}
	if asJSON {
		return writeJSON(stdout, out)
	}
	for _, r := range out.Records {
		fmt.Fprintf(stdout, "; %s\n%s IN %s %s\n", r.Why, r.Name, r.Type, r.Value)
	}
	for _, d := range cfg.Local.Domains {
		fmt.Fprintf(stdout, "\n; MTA-STS policy for %s, to serve as text/plain at https://mta-sts.%s/.well-known/mta-sts.txt\n; (mode testing first; switch to enforce once reports show no failures)\n%s",
			d, d, strings.ReplaceAll(out.Policies[d], "\r\n", "\n"))
	}
	if certs.NextTLSA311() == "" {
		fmt.Fprintln(stdout, "\n; tls.cert_file is the operator's: publish the TLSA record of your next key before you switch to it")
	}
	return nil
}
