package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"mxward/internal/config"
	"mxward/internal/delivery"
	"mxward/internal/lab"
	"mxward/internal/mtasts"
	"mxward/internal/policylist"
	"mxward/internal/spool"
)

const labUsage = `usage: mxward lab [--json] [--html FILE] [--verbose]

Starts a simulated internet inside this process — a DNSSEC-signed DNS tree, receiving
MX hosts, an MTA-STS policy host, and an attacker on the path — and sends real messages
through mxward's own delivery engine from seven sender configurations:

  opportunistic    STARTTLS when offered, any certificate (what most MTAs do)
  verify-mx-name   TLS required, certificate verified for the MX host name
  mta-sts          opportunistic, plus MTA-STS (RFC 8461)
  dane             DANE (RFC 7672) with DNSSEC validated in-process, MTA-STS off
  mxward-default   mxward's defaults: DNSSEC, DANE and MTA-STS
  mxward-list      the defaults and a static policy list naming the MTA-STS domains
  mxward-pinned    the defaults with pinning, after one earlier delivery to every
                   domain (so with its MTA-STS policies cached, too)

to destinations that publish all protections, DANE only, MTA-STS only, or nothing, while
the attacker watches passively, strips STARTTLS, forges the MX record, or forges the
signed address record. It prints what happened to each message: delivered to the right
host, read by the attacker, delivered to the attacker, or deferred. Everything stays on
127.0.0.0/8; nothing is read from or written to the real internet or the current
directory (except the --html file).

  --json        print the results as JSON (schema in docs/lab.md)
  --html FILE   also write a one-page HTML report to FILE
  --verbose     log the delivery engines' attempts to standard error
`

// labSender is one sender configuration of the lab: a configuration fragment mxward's
// own configuration parser reads, like an operator's file.
type labSender struct {
	Name   string `json:"name"`
	Title  string `json:"title"`
	Config string `json:"config"` // TOML merged over the lab's base configuration
	// plainDNS senders resolve through a resolver that does not validate, as most
	// MTAs do: the first three columns show what their mechanism does on its own.
	plainDNS bool
	// list senders install a static policy list with an entry for each destination
	// that publishes MTA-STS, as an operator would for the domains it cares about.
	list bool
	// warm senders deliver one message to every domain before the attacker is switched
	// on, and keep what they learnt (MTA-STS policies, pins): a sender that has met the
	// destinations before.
	warm bool
}

func labSenders() []labSender {
	return []labSender{
		{Name: "opportunistic", Title: "opportunistic STARTTLS, no DNSSEC (what most MTAs do)", plainDNS: true,
			Config: "[delivery]\ntls_level = \"may\"\n[mta_sts]\nenabled = false\n"},
		{Name: "verify-mx-name", Title: "TLS required, certificate verified against the MX name, no DNSSEC", plainDNS: true,
			Config: "[delivery]\ntls_level = \"verify\"\n[mta_sts]\nenabled = false\n"},
		{Name: "mta-sts", Title: "MTA-STS, opportunistic elsewhere, no DNSSEC", plainDNS: true,
			Config: "[delivery]\ntls_level = \"may\"\n[mta_sts]\nenabled = true\n"},
		{Name: "dane", Title: "DANE with DNSSEC validated in-process, no MTA-STS",
			Config: "[delivery]\ntls_level = \"dane\"\n[mta_sts]\nenabled = false\n"},
		{Name: "mxward-default", Title: "mxward's defaults: DNSSEC, DANE and MTA-STS", Config: ""},
		{Name: "mxward-list", Title: "mxward's defaults and a static policy list naming the MTA-STS domains", list: true},
		{Name: "mxward-pinned", Title: "mxward's defaults with pinning, after one earlier delivery to every domain", warm: true,
			Config: "[pinning]\nenabled = true\nmin_observations = 1\n"},
	}
}

// labDestination is a kind of destination domain.
type labDestination struct {
	Kind   string `json:"kind"`
	Title  string `json:"title"`
	signed bool
	tlsa   bool
	sts    bool
	cert   lab.CertKind
}

func labDestinations() []labDestination {
	return []labDestination{
		{Kind: "all", Title: "signed zone, DANE TLSA, MTA-STS enforce, CA-issued certificate", signed: true, tlsa: true, sts: true, cert: lab.CertCA},
		{Kind: "dane", Title: "signed zone, DANE TLSA, self-signed certificate, no MTA-STS", signed: true, tlsa: true, cert: lab.CertSelfSigned},
		{Kind: "mta-sts", Title: "unsigned zone, MTA-STS enforce, CA-issued certificate", sts: true, cert: lab.CertCA},
		{Kind: "none", Title: "unsigned zone, self-signed certificate, no policy", cert: lab.CertSelfSigned},
	}
}

// labAttack is one attacker behaviour, switched on for one destination domain.
type labAttack struct {
	Name  string `json:"name"`
	Title string `json:"title"`
	on    lab.Attack
}

func labAttacks() []labAttack {
	return []labAttack{
		{"none", "no attacker", 0},
		{"passive", "passive: records every byte on the path", lab.Passive},
		{"strip-starttls", "active: deletes STARTTLS from the EHLO reply", lab.StripSTARTTLS},
		{"forge-mx", "active: forged MX naming the attacker's host (CA-valid certificate for its own name)", lab.ForgeMX},
		{"forge-signed", "active: forged address for the MX host, signatures stripped", lab.ForgeSigned},
		{"first-contact", "active, on a sender's first contact: forged MX, and the _mta-sts record denied", lab.ForgeMX | lab.HideMTASTS},
	}
}

// labCell is what happened to one message: the facts are read from the sender's queue,
// the receivers, the attacker's host and the tap, never assumed.
type labCell struct {
	Sender      string `json:"sender"`
	Destination string `json:"destination"`
	Attack      string `json:"attack"`
	Domain      string `json:"domain"`
	// Outcome summarizes the facts: "delivered", "read" (delivered to the right host
	// but seen in clear by the attacker), "stolen" (delivered to the attacker's host),
	// "deferred", "bounced", or "none" when no attempt was recorded in time.
	Outcome string `json:"outcome"`
	// RightHost: the destination's MX host accepted the message.
	RightHost bool `json:"reached_right_host"`
	// AttackerHost: the attacker's own mail host accepted the message.
	AttackerHost bool `json:"reached_attacker_host"`
	// ReadOnPath: the tap saw the message text in clear.
	ReadOnPath bool `json:"read_on_path"`
	// AttackerRead: the attacker has the text, on the path or at its host.
	AttackerRead bool `json:"attacker_read"`
	Deferred     bool `json:"deferred"`
	// Result, Reply and Fields are the sender's first attempt as its queue recorded it
	// (fields: mx, ip, tls, policy, auth, reason, ...).
	Result  string            `json:"result"`
	Reply   string            `json:"reply"`
	Fields  map[string]string `json:"fields,omitempty"`
	Explain string            `json:"explain"`
}

// labReport is the output of mxward lab; its JSON form is stable (docs/lab.md).
type labReport struct {
	Started      time.Time        `json:"started"`
	Seconds      float64          `json:"seconds"`
	Senders      []labSender      `json:"senders"`
	Destinations []labDestination `json:"destinations"`
	Attacks      []labAttack      `json:"attacks"`
	Cells        []labCell        `json:"cells"`
}

// cell returns the cell of sender, destination kind and attack.
func (r *labReport) cell(sender, dest, attack string) *labCell {
	for i := range r.Cells {
		c := &r.Cells[i]
		if c.Sender == sender && c.Destination == dest && c.Attack == attack {
			return c
		}
	}
	return nil
}

func cmdLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, labUsage) }
	asJSON := fs.Bool("json", false, "print JSON")
	htmlFile := fs.String("html", "", "write an HTML report to this file")
	verbose := fs.Bool("verbose", false, "log delivery attempts to standard error")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		fs.Usage()
		return &exitError{code: 64, err: errors.New("")}
	}
	logw := io.Discard
	if *verbose {
		logw = stderr
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := runLab(ctx, slog.New(slog.NewTextHandler(logw, nil)))
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if *htmlFile != "" {
		f, err := os.Create(*htmlFile)
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		werr := writeLabHTML(f, rep)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("lab: write %s: %w", *htmlFile, werr)
		}
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	writeLabText(stdout, rep)
	if *htmlFile != "" {
		fmt.Fprintf(stdout, "\nHTML report: %s\n", *htmlFile)
	}
	return nil
}

// runLab starts the lab internet, delivers one message per sender, destination and
// attack, and reads back what happened.
func runLab(ctx context.Context, log *slog.Logger) (*labReport, error) {
	rep := &labReport{Started: time.Now().UTC(), Senders: labSenders(), Destinations: labDestinations(), Attacks: labAttacks()}
	in, err := startLabInternet(ctx, rep)
	if err != nil {
		return nil, err
	}
	defer in.Close()

	dir, err := os.MkdirTemp("", "mxward-lab-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	listFile, err := writeLabList(dir, rep)
	if err != nil {
		return nil, err
	}
	for i, s := range rep.Senders {
		if s.plainDNS {
			rep.Senders[i].Config = fmt.Sprintf("[dns]\nmode = \"trust-ad\"\nresolvers = [%q] # does not validate\n", in.PlainDNSAddr()) + s.Config
		}
		if s.list {
			rep.Senders[i].Config = fmt.Sprintf("[policy_list]\nfile = %q\n", listFile) + s.Config
		}
	}
	anchors := filepath.Join(dir, "lab-root.anchor")
	if err := in.WriteAnchors(anchors); err != nil {
		return nil, err
	}

	// Senders that met the destinations before do so now, with no attacker about.
	for _, s := range rep.Senders {
		if s.warm {
			if _, err := labSend(ctx, in, s, rep, filepath.Join(dir, s.Name), anchors, log.With("sender", s.Name, "round", "warm-up")); err != nil {
				return nil, err
			}
		}
	}
	for _, d := range rep.Destinations {
		for _, a := range rep.Attacks {
			in.SetAttack(labDomain(d, a), a.on)
		}
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(rep.Senders))
	for i, s := range rep.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cells []labCell
			cells, errs[i] = labSend(ctx, in, s, rep, filepath.Join(dir, s.Name), anchors, log.With("sender", s.Name))
			mu.Lock()
			rep.Cells = append(rep.Cells, cells...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	order := func(c labCell) [3]int {
		return [3]int{
			slices.IndexFunc(rep.Destinations, func(d labDestination) bool { return d.Kind == c.Destination }),
			slices.IndexFunc(rep.Attacks, func(a labAttack) bool { return a.Name == c.Attack }),
			slices.IndexFunc(rep.Senders, func(s labSender) bool { return s.Name == c.Sender }),
		}
	}
	slices.SortFunc(rep.Cells, func(a, b labCell) int {
		oa, ob := order(a), order(b)
		for i := range oa {
			if oa[i] != ob[i] {
				return oa[i] - ob[i]
			}
		}
		return 0
	})
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, nil
}

// writeLabList writes the static policy list of the list senders: an enforce entry,
// Web PKI verified, for each destination that publishes MTA-STS, naming its MX host.
func writeLabList(dir string, rep *labReport) (string, error) {
	var b strings.Builder
	b.WriteString("author = \"mxward lab\"\n")
	for _, d := range rep.Destinations {
		if !d.sts {
			continue
		}
		for _, a := range rep.Attacks {
			dom := labDomain(d, a)
			fmt.Fprintf(&b, "\n[domains.%q]\nmode = \"enforce\"\nmxs = [%q]\nmin-tls = \"verify\"\n", dom, "mx."+dom)
		}
	}
	f := filepath.Join(dir, "policy-list.toml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("write the policy list: %w", err)
	}
	return f, nil
}

// labDomain is the destination domain of kind d under attack a: each pair has its own,
// so that every message runs at once.
func labDomain(d labDestination, a labAttack) string { return d.Kind + "-" + a.Name + ".lab" }

// startLabInternet starts the lab with one domain per destination kind and attack; the
// attacks are switched on by the caller.
func startLabInternet(ctx context.Context, rep *labReport) (*lab.Internet, error) {
	var zones []lab.Zone
	policies := make(map[string]string)
	for _, d := range rep.Destinations {
		for _, a := range rep.Attacks {
			z := lab.Zone{Name: labDomain(d, a), Signed: d.signed}
			mx := lab.MXHost{Name: "mx", Pref: 10, Cert: d.cert}
			if d.tlsa {
				mx.TLSA = lab.TLSAMatch
			}
			z.MX = append(z.MX, mx)
			zones = append(zones, z)
			if d.sts {
				policies[z.Name] = "version: STSv1\r\nmode: enforce\r\nmx: mx." + z.Name + "\r\nmax_age: 86400\r\n"
			}
		}
	}
	return lab.Start(ctx, lab.Options{Zones: zones, Policies: policies})
}

// labSend runs one sender: mxward's configuration parser, spool, resolver and outbound
// delivery engine with its policy sources (DKIM, MTA-STS, the static list, pins), built
// by the functions `mxward serve` builds them with (newResolver, newRemote,
// outboundPolicies), with the lab's DNS server, trust anchor and CA in place of the
// internet's. It queues one message per destination, runs the engine until each has
// had its first attempt, and returns the cells.
func labSend(ctx context.Context, in *lab.Internet, s labSender, rep *labReport, dir, anchors string, log *slog.Logger) ([]labCell, error) {
	base := fmt.Sprintf("hostname = \"mxward.sender.lab\"\ndata_dir = %q\n[dns]\nmode = \"validate\"\nresolvers = [%q]\ntrust_anchor_file = %q\n[mta_sts]\nhttps_port = %d\n[delivery]\nconnect_timeout = \"5s\"\n",
		dir, in.DNSAddr(), anchors, in.HTTPSPort)
	cfg, err := config.Parse("lab sender "+s.Name, []byte(mergeTOML(base, s.Config)))
	if err != nil {
		return nil, fmt.Errorf("sender %s: %w", s.Name, err)
	}
	fstore, err := spool.Open(ctx, filepath.Join(dir, "spool"), spool.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("sender %s: open spool: %w", s.Name, err)
	}
	store := &recordingStore{FileStore: fstore, first: make(map[spool.ID]spool.Attempt)}
	defer store.Close()
	res, err := newResolver(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("sender %s: %w", s.Name, err)
	}
	retry := delivery.Retry{First: time.Duration(cfg.Delivery.RetryFirst), Max: time.Duration(cfg.Delivery.RetryMax),
		Lifetime: time.Duration(cfg.Delivery.MessageLifetime)}
	remote, err := newRemote(cfg, res, store, retry, nil, log)
	if err != nil {
		return nil, fmt.Errorf("sender %s: %w", s.Name, err)
	}
	// The lab's receivers share one port instead of 25, and its Web PKI is the lab CA.
	remote.Port = in.SMTPPort
	remote.Roots = in.CAPool()
	var list policylist.Current
	_, sts, err := outboundPolicies(cfg, res, remote, &list, log)
	if err != nil {
		return nil, fmt.Errorf("sender %s: %w", s.Name, err)
	}
	if sts != nil {
		sts.Fetcher.(*mtasts.HTTPFetcher).RootCAs = in.CAPool()
	}

	type queued struct {
		id      spool.ID
		cell    labCell
		marker  string
		mxHost  string
		rcptDom string
	}
	var msgs []queued
	for _, d := range rep.Destinations {
		for _, a := range rep.Attacks {
			dom := labDomain(d, a)
			marker := labMarker()
			w, err := store.Create(ctx)
			if err != nil {
				return nil, fmt.Errorf("sender %s: queue a message: %w", s.Name, err)
			}
			fmt.Fprintf(w, "From: mxward lab <lab@sender.lab>\r\nTo: <postmaster@%s>\r\nSubject: lab message %s\r\nMessage-ID: <%s@sender.lab>\r\nDate: %s\r\n\r\nThe secret in this message is %s.\r\n",
				dom, marker, marker, time.Now().Format(time.RFC1123Z), marker)
			id, err := w.Commit(ctx, spool.Envelope{From: "lab@sender.lab", Recipients: []spool.Recipient{{Addr: "postmaster@" + dom}},
				BodyType: spool.Body7Bit, ReceivedAt: time.Now(), ClientIP: "local", Listener: "lab"})
			if err != nil {
				return nil, fmt.Errorf("sender %s: queue a message: %w", s.Name, err)
			}
			msgs = append(msgs, queued{id: id, marker: marker, mxHost: "mx." + dom, rcptDom: dom,
				cell: labCell{Sender: s.Name, Destination: d.Kind, Attack: a.Name, Domain: dom}})
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { remote.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	cells := make([]labCell, len(msgs))
	pending := len(msgs)
	deadline := time.Now().Add(60 * time.Second)
	for pending > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		pending = 0
		for i, m := range msgs {
			if cells[i].Result != "" {
				continue
			}
			at, ok := store.firstAttempt(m.id)
			if !ok {
				pending++
				continue
			}
			c := m.cell
			c.Result, c.Reply, c.Fields = at.Result, at.Reply, at.Fields
			cells[i] = c
		}
		if pending > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Let sessions finish their QUIT before reading the receivers.
	stop()
	<-done
	for i, m := range msgs {
		c := &cells[i]
		if c.Sender == "" {
			*c = m.cell
		}
		c.RightHost = received(in.Received(m.mxHost), m.marker)
		c.AttackerHost = received(in.AttackerReceived(), m.marker)
		c.ReadOnPath = in.Read(m.rcptDom, m.marker)
		c.AttackerRead = c.ReadOnPath || c.AttackerHost
		c.Deferred = c.Result == "deferred"
		c.Outcome, c.Explain = labExplain(c)
	}
	return cells, nil
}

// recordingStore is the sender's spool, keeping a copy of each message's first recorded
// attempt: the spool forgets a message once it is delivered.
type recordingStore struct {
	*spool.FileStore
	mu    sync.Mutex
	first map[spool.ID]spool.Attempt
}

// Record implements spool.Store.
func (s *recordingStore) Record(ctx context.Context, id spool.ID, outcomes []spool.Outcome) error {
	err := s.FileStore.Record(ctx, id, outcomes)
	if err == nil && len(outcomes) > 0 {
		s.mu.Lock()
		if _, seen := s.first[id]; !seen {
			s.first[id] = outcomes[0].Attempt
		}
		s.mu.Unlock()
	}
	return err
}

func (s *recordingStore) firstAttempt(id spool.ID) (spool.Attempt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.first[id]
	return at, ok
}

// received reports whether one of msgs carries marker.
func received(msgs []lab.Message, marker string) bool {
	return slices.ContainsFunc(msgs, func(m lab.Message) bool { return strings.Contains(string(m.Data), marker) })
}

// labMarker is a random word to find a message by, in mailboxes and on the wire.
func labMarker() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "secret-" + hex.EncodeToString(b)
}

// mergeTOML merges the sender's fragment into the base configuration: tables both name
// ([delivery], [mta_sts]) become one, as TOML forbids a table twice, and a key the
// fragment sets replaces the base's. Both are simple "key = value" lines.
func mergeTOML(base, extra string) string {
	tables := map[string][]string{}
	var order []string
	add := func(text string) {
		table := ""
		for _, line := range strings.Split(text, "\n") {
			if line == "" {
				continue
			}
			if strings.HasPrefix(line, "[") {
				table = line
				continue
			}
			if _, ok := tables[table]; !ok {
				order = append(order, table)
			}
			key, _, _ := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			if i := slices.IndexFunc(tables[table], func(l string) bool {
				k, _, _ := strings.Cut(l, "=")
				return strings.TrimSpace(k) == key
			}); i >= 0 {
				tables[table][i] = line // the sender's value replaces the base's
				continue
			}
			tables[table] = append(tables[table], line)
		}
	}
	add(base)
	add(extra)
	var b strings.Builder
	for _, t := range order {
		if t != "" {
			b.WriteString(t + "\n")
		}
		for _, l := range tables[t] {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// labExplain names a cell's outcome and says in a sentence what happened, from its
// facts alone.
func labExplain(c *labCell) (string, string) {
	f := c.Fields
	how := func() string {
		var parts []string
		if t := f["tls"]; t != "" {
			parts = append(parts, "tls="+t)
		}
		for _, k := range []string{"policy", "auth"} {
			if v := f[k]; v != "" {
				parts = append(parts, k+"="+v)
			}
		}
		if len(parts) == 0 {
			return ""
		}
		return " (" + strings.Join(parts, " ") + ")"
	}
	plain := f["tls"] == "" || f["tls"] == "none"
	switch {
	case c.AttackerHost:
		return "stolen", fmt.Sprintf("Delivered to the attacker's host %s%s: the sender trusted a forged answer, so encryption only protected the hop to the attacker.", lab.AttackerHost(), how())
	case c.RightHost && c.ReadOnPath:
		return "read", fmt.Sprintf("Delivered to %s in clear%s: the attacker on the path read the whole message.", f["mx"], how())
	case c.RightHost:
		if plain {
			return "delivered", fmt.Sprintf("Delivered to %s in clear%s; no attacker was watching this time.", f["mx"], how())
		}
		return "delivered", fmt.Sprintf("Delivered to %s%s; the path saw only ciphertext.", f["mx"], how())
	case c.ReadOnPath:
		return "read", fmt.Sprintf("Not delivered, but the attacker on the path read the message (%s).", c.Reply)
	case c.Result == "deferred":
		r := c.Reply
		if reason := f["reason"]; reason != "" && !strings.Contains(r, reason) {
			r += " [" + reason + "]"
		}
		return "deferred", "Deferred, nothing delivered or read: " + r
	case c.Result == "bounced":
		return "bounced", "Bounced, nothing delivered or read: " + c.Reply
	case c.Result == "delivered":
		return "delivered", fmt.Sprintf("The sender recorded a delivery to %s%s that no lab host shows.", f["mx"], how())
	}
	return "none", "No delivery attempt was recorded in time."
}
