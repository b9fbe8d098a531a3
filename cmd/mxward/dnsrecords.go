package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"mxward/internal/config"
	"mxward/internal/mtasts"
	"mxward/internal/mtasts/policyserver"
	"mxward/internal/tlscert"
)

const dnsRecordsUsage = `usage: mxward dns-records [--config FILE] [--json]

Prints the DNS records to publish for the domains mxward receives mail for (local.domains)
and for its host name, and why:

  TLSA 3 1 1    DANE-EE records for the current key and the next key (RFC 7672 §3.1.1).
                Publishing the next key's record ahead makes a key rollover safe:
                "mxward tls rollover" switches keys only once it is visible in DNS.
  MX            the host name as the domains' mail exchanger.
  MTA-STS       the _mta-sts TXT record and the policy ([mta_sts_policy]) served at
                https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461): by
                mxward itself when mta_sts_policy.listen is set and a certificate
                names mta-sts.<domain> (then also the CNAME of the policy host),
                otherwise by a web server of yours. The id changes with the policy.
  TLS-RPT       the _smtp._tls TXT record asking senders for TLS reports (RFC 8460).
  DKIM          the <selector>._domainkey TXT record of each [[dkim]] key (RFC 6376).

The TLSA records only protect mail if the zone holding the host name is DNSSEC-signed.
`

// recordsJSON is the --json output of dns-records; its field names are stable.
type recordsJSON struct {
	Hostname string       `json:"hostname"`
	Records  []recordJSON `json:"records"`
	// Policies maps each domain to the MTA-STS policy text to serve.
	Policies map[string]string `json:"mta_sts_policies"`
	// PolicyID is the id of that text, the one in the _mta-sts TXT records.
	PolicyID string `json:"mta_sts_policy_id"`
	// PolicyHosts says, per domain, who serves the policy.
	PolicyHosts map[string]policyHostJSON `json:"mta_sts_policy_hosts"`
}

// policyHostJSON describes the policy host of one domain in dns-records --json.
type policyHostJSON struct {
	URL string `json:"url"`
	// ServedBy is "mxward" when mxward serves the policy itself, else "operator".
	ServedBy string `json:"served_by"`
	// Listen and CertFile are the listener and certificate serving it (mxward only).
	Listen   string `json:"listen,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	// Problem says why mxward does not serve it although mta_sts_policy.listen is set.
	Problem string `json:"problem,omitempty"`
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
	pub, err := cfg.MTASTSPublication()
	if err != nil {
		return fmt.Errorf("dns-records: %w", err)
	}
	hosts := policyHosts(ctx, cfg)
	host := strings.TrimSuffix(cfg.Hostname, ".") + "."
	out := recordsJSON{Hostname: cfg.Hostname, Policies: map[string]string{}, PolicyID: pub.ID, PolicyHosts: hosts}
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
		add("_mta-sts."+dom, "TXT", fmt.Sprintf("%q", pub.Record()),
			"announces the MTA-STS policy; the id changes whenever the policy text does (RFC 8461 §3.1)")
		if h := hosts[d]; h.ServedBy == "mxward" {
			add("mta-sts."+dom, "CNAME", host, "the policy host: mxward serves the policy on "+h.Listen+
				" (senders connect to port 443) with the certificate "+h.CertFile)
		}
		out.Policies[d] = pub.Text
		add("_smtp._tls."+dom, "TXT", fmt.Sprintf("\"v=TLSRPTv1; rua=mailto:tlsrpt@%s\"", strings.TrimSuffix(d, ".")),
			"asks senders for daily TLS reports (RFC 8460 §3)")
	}
	if err := addDKIMRecords(cfg, add); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, out)
	}
	for _, r := range out.Records {
		fmt.Fprintf(stdout, "; %s\n%s IN %s %s\n", r.Why, r.Name, r.Type, r.Value)
	}
	for _, d := range cfg.Local.Domains {
		h := hosts[d]
		switch {
		case h.ServedBy == "mxward":
			fmt.Fprintf(stdout, "\n; MTA-STS policy for %s, served by mxward at %s (listener %s, certificate %s)\n",
				d, h.URL, h.Listen, h.CertFile)
		case h.Problem != "":
			fmt.Fprintf(stdout, "\n; MTA-STS policy for %s: mxward does NOT serve it (%s);\n; serve it as text/plain at %s\n",
				d, h.Problem, h.URL)
		default:
			fmt.Fprintf(stdout, "\n; MTA-STS policy for %s, to serve as text/plain at %s\n; (or let mxward serve it: set mta_sts_policy.listen and a certificate for mta-sts.%s)\n",
				d, h.URL, d)
		}
		if pub.Policy.Mode == mtasts.ModeTesting {
			fmt.Fprintln(stdout, "; (mode testing first; switch mta_sts_policy.mode to enforce once reports show no failures)")
		}
		fmt.Fprint(stdout, strings.ReplaceAll(out.Policies[d], "\r\n", "\n"))
	}
	if certs.NextTLSA311() == "" {
		fmt.Fprintln(stdout, "\n; tls.cert_file is the operator's: publish the TLSA record of your next key before you switch to it")
	}
	return nil
}

// policyServerConfig is what the MTA-STS policy server serves under cfg: the policy of
// [mta_sts_policy] for every local domain, with its certificates. serve and
// dns-records both use it, so what dns-records reports is what serve does.
func policyServerConfig(cfg *config.Config) (policyserver.Config, error) {
	pub, err := cfg.MTASTSPublication()
	if err != nil {
		return policyserver.Config{}, err
	}
	pc := policyserver.Config{Domains: cfg.Local.Domains, Policy: pub}
	for _, c := range cfg.MTASTSPolicy.Certificates {
		pc.Certificates = append(pc.Certificates, policyserver.CertFiles{CertFile: c.CertFile, KeyFile: c.KeyFile})
	}
	return pc, nil
}

// policyHosts says for each local domain whether mxward serves its MTA-STS policy: it
// does when mta_sts_policy.listen is set and one of the certificates, loaded as serve
// loads them, names mta-sts.<domain>.
func policyHosts(ctx context.Context, cfg *config.Config) map[string]policyHostJSON {
	out := make(map[string]policyHostJSON, len(cfg.Local.Domains))
	for _, d := range cfg.Local.Domains {
		out[d] = policyHostJSON{URL: "https://mta-sts." + d + mtasts.WellKnownPath, ServedBy: "operator"}
	}
	listen := cfg.MTASTSPolicy.Listen
	if listen == "" {
		return out
	}
	pcfg, err := policyServerConfig(cfg)
	var srv *policyserver.Server
	if err == nil {
		srv, err = policyserver.New(ctx, pcfg, nil)
	}
	if err != nil {
		for d, h := range out {
			h.Problem = err.Error()
			out[d] = h
		}
		return out
	}
	for _, c := range srv.Coverage() {
		h := out[c.Domain]
		if c.CertFile == "" {
			h.Problem = "no [[mta_sts_policy.certificate]] names " + c.Host
		} else {
			h.ServedBy, h.Listen, h.CertFile = "mxward", listen, c.CertFile
		}
		out[c.Domain] = h
	}
	return out
}
