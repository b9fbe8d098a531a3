package main

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mxward/internal/dns/dnstest"
)

// tlsaTTL is the TTL of the test's TLSA records. It is short so that the test can honour
// the rollover procedure of docs/records.md, which waits out the TTL after every change
// (RFC 7671 §8.1), in about a second: the sender caches DNS answers for their TTL, so a
// change becomes visible to it only once the old RRset has expired.
const tlsaTTL = 1 * time.Second

// TestDANERollover proves the key rollover of docs/records.md end to end: a sending
// mxward that delivers only over DANE-authenticated TLS (delivery.tls_level
// "dane-only", DANE-26) keeps delivering to a receiving mxward while the receiver
//
//  1. has the TLSA records of its current and its next key published,
//  2. switches to the next key with `mxward tls rollover` and a SIGHUP,
//  3. has the old key's record removed and the new next key's record published,
//
// each record's TTL waited out before the step that depends on it. Each phase sends a
// message to alice and checks that it reached the receiver's Maildir and that the
// sender logged a delivery authenticated by DANE-EE (DANE-20) through the TLSA record of
// the key the receiver then presents; phase 2's message goes over a fresh session, so
// it is the new key that is authenticated. Between the phases, a stream of messages to
// bob runs across the switch and the removal, and every one of them must be delivered
// the same way. A control phase then publishes only a record that matches neither key:
// its message must be deferred with 4.7.5 and reach nobody (DANE-19), and be delivered
// once the records are right again. Without the control, a sender that ignored TLSA
// records would pass every other phase.
//
// The receiver's inbound listener is on a free loopback port, not 25. The sender still
// does the MX lookup and the TLSA step, through a transport entry "example.test:PORT":
// Postfix's next-hop syntax for "MX lookup of example.test, then this port" (an address
// literal "[127.0.0.1]:PORT" would skip both, DANE-14). The TLSA query name is therefore
// _PORT._tcp.mx.example.test (DANE-12). mxward's own commands name _25._tcp, the port
// senders reach a receiver on in production whatever its listener's address, and `tls
// rollover` checks there; the test publishes each RRset at both names, which in
// production are one.
//
// DNS comes from an in-process server on loopback that answers for a signed tree (every
// answer carries the AD bit); both instances trust that bit (dns.mode "trust-ad",
// DANE-01).
func TestDANERollover(t *testing.T) {
	dnsSrv := dnstest.NewServer(t)
	dnsSrv.Add(
		// The root's SOA, answered secure, is what the resolver self-test asks for: the
		// sender's resolver passes it, as a DANE sender's must (DANE-01).
		". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400",
		"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 7200 900 1209600 300",
		"example.test. 3600 IN MX 10 mx.example.test.",
		"mx.example.test. 3600 IN A 127.0.0.1",
	)
	dnsSrv.Secure(".")
	dnsTable := fmt.Sprintf("mode = \"trust-ad\"\nresolvers = [%q]", dnsSrv.Addr)

	// The receiver generates its key pair and its next key itself on first start.
	rcv := startInstanceDNS(t, dnsTable, "")
	port := rcv.ports["inbound"]
	owners := []string{
		fmt.Sprintf("_%d._tcp.mx.example.test.", port), // what the sender asks (DANE-12)
		"_25._tcp.mx.example.test.",                    // what `mxward tls rollover` checks
	}
	// changed is when the TLSA RRsets last changed. waitTTL waits until no sender can
	// still hold the RRset from before (procedure steps 2 and 4); it is called before
	// every step whose outcome depends on the sender seeing the change.
	var changed time.Time
	publish := func(digests ...string) {
		t.Helper()
		for _, o := range owners {
			dnsSrv.Remove(o)
			for _, d := range digests {
				dnsSrv.Add(fmt.Sprintf("%s %d IN TLSA 3 1 1 %s", o, int(tlsaTTL/time.Second), d))
			}
		}
		changed = time.Now()
		for _, d := range digests {
			t.Logf("  published TLSA 3 1 1 %s", d)
		}
	}
	waitTTL := func() { time.Sleep(time.Until(changed.Add(tlsaTTL + 100*time.Millisecond))) }

	snd := startRolloverSender(t, dnsTable, port)
	t.Cleanup(func() {
		if !t.Failed() && len(snd.logRecords("dns resolver self-test passed")) == 0 {
			t.Errorf("the sender's resolver did not pass its DNSSEC self-test:\n%s", snd.log.String())
		}
	})

	// sent counts the phase messages sent to alice, so that each phase looks at the
	// delivery record of its own message.
	sent := 0
	// deliver sends one message to alice through the sender and returns its delivery log
	// record, which must have the result want.
	deliver := func(phase, want string) map[string]any {
		t.Helper()
		msg := fmt.Sprintf("Subject: rollover %s\n\nSent in phase %s.\n", phase, phase)
		if out, err := snd.mxward(msg, "sendmail", "-f", "carol@sender.test", "alice@example.test"); err != nil {
			t.Fatalf("%s: sendmail: %v\n%s", phase, err, out)
		}
		rec := snd.nthDelivery("alice@example.test", sent)
		sent++
		if rec["result"] != want {
			t.Fatalf("%s: delivery %v, want %s\nsender log:\n%s", phase, rec, want, snd.log.String())
		}
		return rec
	}
	// checkDANE asserts that rec is a DANE-EE authenticated delivery to the receiver,
	// through the record for digest, and that the message is in alice's Maildir.
	checkDANE := func(phase string, rec map[string]any, digest string) {
		t.Helper()
		t.Logf("  %s: result=%v policy=%v tls=%v auth=%v reason=%q", phase, rec["result"], rec["policy"], rec["tls"], rec["auth"], rec["reason"])
		if err := daneDelivered(rec, digest); err != nil {
			t.Errorf("phase %s: %v", phase, err)
		}
		rcv.waitMaildirSubject(t, "alice", "rollover "+phase)
	}

	// The stream sends to bob every streamInterval while the keys change under it, so
	// that "deliveries keep succeeding throughout" is checked between the phases too,
	// not only at them; streamed is how many it has sent in all.
	streamed := 0
	stream := func(window string, digests ...string) (stop func()) {
		done := make(chan struct{})
		finished := make(chan int, 1)
		go func() {
			n := 0
			defer func() { finished <- n }()
			for {
				msg := fmt.Sprintf("Subject: stream %s %d\n\nStreamed.\n", window, n)
				if out, err := snd.mxward(msg, "sendmail", "-f", "carol@sender.test", "bob@example.test"); err != nil {
					t.Errorf("stream %s: sendmail: %v\n%s", window, err, out)
					return
				}
				n++
				select {
				case <-done:
					return
				case <-time.After(streamInterval):
				}
			}
		}()
		var once sync.Once
		var n int
		halt := func() int {
			once.Do(func() { close(done); n = <-finished })
			return n
		}
		// A phase that fails stops the test before stop is called; the stream must not
		// outlive it.
		t.Cleanup(func() { halt() })
		return func() {
			t.Helper()
			n := halt()
			recs := snd.waitDeliveries(t, "bob@example.test", streamed+n)
			if len(recs) != streamed+n {
				t.Fatalf("stream %s: %d delivery records for %d messages", window, len(recs), streamed+n)
			}
			byKey := map[string]int{}
			for _, rec := range recs[streamed:] {
				ok := false
				for _, d := range digests {
					if daneDelivered(rec, d) == nil {
						ok = true
						byKey[d[:12]]++
					}
				}
				if !ok {
					t.Errorf("stream %s: delivery %v, want delivered, DANE-EE authenticated by one of %v", window, rec, digests)
				}
			}
			streamed += n
			rcv.waitMaildirCount(t, "bob", streamed)
			t.Logf("  stream %s: %d messages delivered, authenticated by the records %v", window, n, byKey)
		}
	}

	keys := rcv.tlsaRecords(t)
	if len(keys) != 2 {
		t.Fatalf("dns-records before any rollover: %v, want the current and the next key", keys)
	}
	cur, next := keys[0], keys[1]
	if got := rcv.presentedKey(t); got != cur {
		t.Fatalf("receiver presents the key %s, dns-records names %s as current", got, cur)
	}

	t.Logf("phase 1: current and next key published")
	publish(cur, next)
	checkDANE("1", deliver("1", "delivered"), cur)

	t.Logf("phase 2: tls rollover, then SIGHUP")
	stop := stream("A", cur, next)
	waitTTL()
	out, err := rcv.mxward("", "tls", "rollover")
	if err != nil || !strings.Contains(out, "switched to the next key") {
		t.Fatalf("tls rollover with the next key published: %v\n%s", err, out)
	}
	t.Logf("  %s", strings.ReplaceAll(strings.TrimSpace(out), "\n", "\n  "))
	rcv.cmd.Process.Signal(syscall.SIGHUP)
	rcv.waitPresentedKey(t, next)
	t.Logf("  receiver presents the new key %s", next)
	stop()
	// A session the sender opened before the switch is still on the old key, whose
	// record is still published: delivering over it is right, but would not show that
	// the new key authenticates. Wait until the sender has closed it.
	rcv.waitNoSessions(t)
	checkDANE("2", deliver("2", "delivered"), next)

	t.Logf("phase 3: old key's record removed, new next key published")
	stop = stream("B", next)
	keys = rcv.tlsaRecords(t)
	if len(keys) != 3 || keys[0] != next || keys[2] != cur || keys[1] == cur || keys[1] == next {
		t.Fatalf("dns-records after the rollover: %v, want current %s, a new next key, previous %s", keys, next, cur)
	}
	cur, next = keys[0], keys[1]
	publish(cur, next)
	waitTTL()
	checkDANE("3", deliver("3", "delivered"), cur)
	stop()

	t.Logf("phase 4 (control): only a record that matches neither key")
	before := rcv.maildirCount(t, "alice")
	sum := sha256.Sum256([]byte("a key nobody holds"))
	publish(hex.EncodeToString(sum[:]))
	waitTTL()
	rec := deliver("4", "deferred")
	t.Logf("  4: result=%v reply=%q reason=%q", rec["result"], rec["reply"], rec["reason"])
	// The reason shows the deferral came from the key check (docs/logging.md), not from
	// the receiver or DNS being unreachable.
	if !strings.Contains(fmt.Sprint(rec["reply"]), "4.7.5") || rec["reason"] != "verify_failed: dane no_match" {
		t.Errorf("control: deferred with %q, reason %q; want 4.7.5, verify_failed: dane no_match", rec["reply"], rec["reason"])
	}
	if n := rcv.maildirCount(t, "alice"); n != before {
		t.Fatalf("control: the receiver got %d messages while no record matched its key", n-before)
	}
	if q := snd.queueIDs(t); len(q) != 1 {
		t.Fatalf("control: sender's queue holds %v, want the deferred message", q)
	}

	// The deferred message was kept, not bounced (decision 14.7). Once the records are
	// right again it is delivered. The running server notices `queue retry` at its next
	// queue poll (delivery.Remote.Poll, 5 s), which is most of this test's run time.
	t.Logf("phase 4 (recovery): records restored, queue retried")
	publish(cur, next)
	waitTTL()
	if out, err := snd.mxward("", "queue", "retry", "--all"); err != nil {
		t.Fatalf("queue retry --all: %v\n%s", err, out)
	}
	rec = snd.nthDelivery("alice@example.test", sent)
	if rec["result"] != "delivered" {
		t.Fatalf("after the records were restored: %v\nsender log:\n%s", rec, snd.log.String())
	}
	checkDANE("4", rec, cur)
	if n := rcv.maildirCount(t, "alice"); n != before+1 {
		t.Errorf("receiver has %d messages for alice after the retry, want %d", n, before+1)
	}
}

// streamInterval is how often the background stream of TestDANERollover sends.
const streamInterval = 50 * time.Millisecond

// daneDelivered reports why the delivery log record rec is not a delivery to the
// receiver authenticated by DANE-EE through the TLSA 3 1 1 record for digest.
func daneDelivered(rec map[string]any, digest string) error {
	if rec["result"] != "delivered" || rec["policy"] != "dane" || rec["tls"] != "verified" || rec["auth"] != "dane-ee" ||
		rec["mx"] != "mx.example.test" || rec["ip"] != "127.0.0.1" {
		return fmt.Errorf("delivery record %v, want delivered with policy=dane tls=verified auth=dane-ee via mx.example.test", rec)
	}
	// The reason names the record that matched, its digest shortened (dane.Format).
	if want := "dane-ee 3 1 1 " + digest[:12]; !strings.HasPrefix(fmt.Sprint(rec["reason"]), want) {
		return fmt.Errorf("authenticated by %q, want the record for %s", rec["reason"], digest)
	}
	return nil
}

// startRolloverSender starts a sending mxward for TestDANERollover: its own domain
// sender.test, mail for example.test routed by MX lookup to the receiver's inbound port,
// and only DANE-authenticated delivery allowed. It never retries on its own within the
// test (retry_first is an hour): the test asks for retries.
func startRolloverSender(t *testing.T, dnsTable string, port int) *instance {
	t.Helper()
	dir := t.TempDir()
	ports := map[string]int{"inbound": freePort(t), "submission": freePort(t), "submissions": freePort(t)}
	in := &instance{t: t, dir: dir, ports: ports, cfgPath: filepath.Join(dir, "mxward.toml")}
	delivery := fmt.Sprintf("tls_level = \"dane-only\"\nretry_first = \"1h\"\nconnect_timeout = \"5s\"\n"+
		"\n[delivery.transport]\n\"example.test\" = \"example.test:%d\"\n", port)
	cfg := baseConfig(t, dir, ports, delivery)
	for _, r := range []struct{ old, new string }{
		{"hostname = \"mx.example.test\"\n", "hostname = \"mx.sender.test\"\n"},
		{"[dns]\nmode = \"trust-ad\"\nresolvers = [\"127.0.0.1:9\"]\n", "[dns]\n" + dnsTable + "\n"},
	} {
		if !strings.Contains(cfg, r.old) {
			t.Fatalf("baseConfig no longer contains %q", r.old)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	// The sender must not own example.test, or it would deliver to itself.
	i := strings.Index(cfg, "\n[local]\n")
	if i < 0 {
		t.Fatal("baseConfig no longer has a [local] table")
	}
	cfg = cfg[:i] + "\n[local]\ndomains = [\"sender.test\"]\n"
	if err := os.WriteFile(in.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	in.start()
	t.Cleanup(func() { in.stop(syscall.SIGTERM) })
	return in
}

// tlsaRecords returns the association data of the TLSA records `mxward dns-records
// --json` prints, in its order: the current key, the next key, and after a rollover the
// previous key.
func (in *instance) tlsaRecords(t *testing.T) []string {
	t.Helper()
	out, err := in.mxward("", "dns-records", "--json")
	var j recordsJSON
	if err != nil || json.Unmarshal([]byte(out), &j) != nil {
		t.Fatalf("dns-records --json: %v\n%s", err, out)
	}
	var digests []string
	for _, r := range j.Records {
		if r.Type != "TLSA" {
			continue
		}
		d, ok := strings.CutPrefix(r.Value, "3 1 1 ")
		if !ok || len(d) != 64 || r.Name != "_25._tcp.mx.example.test." {
			t.Fatalf("dns-records: unexpected TLSA record %+v", r)
		}
		digests = append(digests, d)
	}
	return digests
}

// presentedKey connects to the inbound listener, starts TLS, and returns the TLSA 3 1 1
// association data of the certificate the server presents.
func (in *instance) presentedKey(t *testing.T) string {
	t.Helper()
	d, err := in.starttlsKey()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (in *instance) starttlsKey() (string, error) {
	conn, err := net.DialTimeout("tcp", in.addr("inbound"), 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", in.addr("inbound"), err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := smtp.NewClient(conn, "mx.example.test")
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("smtp greeting from %s: %w", in.addr("inbound"), err)
	}
	defer c.Close()
	if err := c.Hello("probe.test"); err != nil {
		return "", fmt.Errorf("EHLO to %s: %w", in.addr("inbound"), err)
	}
	// The key is compared with TLSA data below, as a DANE-EE client does (DANE-20);
	// the self-signed certificate has no chain to verify.
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.test"}); err != nil {
		return "", fmt.Errorf("STARTTLS with %s: %w", in.addr("inbound"), err)
	}
	cs, ok := c.TLSConnectionState()
	if !ok || len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("STARTTLS with %s: no peer certificate", in.addr("inbound"))
	}
	c.Quit()
	sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// waitPresentedKey polls the inbound listener until the server presents the key whose
// TLSA 3 1 1 data is want.
func (in *instance) waitPresentedKey(t *testing.T, want string) {
	t.Helper()
	var got string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, err = in.starttlsKey(); err == nil && got == want {
			return
		}
	}
	t.Fatalf("server presents %s (%v) 10s after SIGHUP, want %s\nlog:\n%s", got, err, want, in.log.String())
}

// waitNoSessions waits until every SMTP session the server logged as connected has been
// logged as disconnected.
func (in *instance) waitNoSessions(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		open := len(in.logRecords("connect")) - len(in.logRecords("disconnect"))
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d SMTP sessions still open after 15s\nlog:\n%s", open, in.log.String())
		}
	}
}

// nthDelivery waits for the sender's delivery log record number n (from 0) for rcpt.
func (in *instance) nthDelivery(rcpt string, n int) map[string]any {
	in.t.Helper()
	return in.waitDeliveries(in.t, rcpt, n+1)[n]
}

// waitDeliveries waits until the log has n delivery records for rcpt and returns them.
func (in *instance) waitDeliveries(t *testing.T, rcpt string, n int) []map[string]any {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var recs []map[string]any
		for _, r := range in.logRecords("delivery") {
			if r["rcpt"] == rcpt {
				recs = append(recs, r)
			}
		}
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivery records for %s after 20s, want %d\nlog:\n%s", len(recs), rcpt, n, in.log.String())
		}
	}
}

// maildirPath is the new mail of user@example.test on the receiver.
func (in *instance) maildirPath(user string) string {
	return filepath.Join(in.dir, "data", "mail", "example.test", user, "new")
}

// maildirCount returns the number of messages in user@example.test's Maildir.
func (in *instance) maildirCount(t *testing.T, user string) int {
	t.Helper()
	entries, err := os.ReadDir(in.maildirPath(user))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(entries)
}

// waitMaildirCount waits until user@example.test's Maildir holds exactly n messages.
func (in *instance) waitMaildirCount(t *testing.T, user string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := in.maildirCount(t, user)
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%d messages for %s, want %d\nlog:\n%s", got, user, n, in.log.String())
		}
	}
}

// waitMaildirSubject waits until a message with the given subject is in
// user@example.test's Maildir.
func (in *instance) waitMaildirSubject(t *testing.T, user, subject string) {
	t.Helper()
	dir := in.maildirPath(user)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err == nil && (strings.Contains(string(b), "\nSubject: "+subject+"\n") ||
				strings.Contains(string(b), "\nSubject: "+subject+"\r\n")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %q in %s after 20s\nlog:\n%s", subject, dir, in.log.String())
		}
	}
}

// queueIDs returns the ids of the messages in the queue.
func (in *instance) queueIDs(t *testing.T) []string {
	t.Helper()
	out, err := in.mxward("", "queue", "list", "--json")
	var msgs []msgJSON
	if err != nil || json.Unmarshal([]byte(out), &msgs) != nil {
		t.Fatalf("queue list --json: %v\n%s", err, out)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}
