package local

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// skipInterop skips an interoperability test whose server is missing, unless
// MXWARD_REQUIRE_INTEROP=1 says the environment must have it (as CI does).
func skipInterop(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("MXWARD_REQUIRE_INTEROP") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// dovecot is a Dovecot instance private to one test.
type dovecot struct {
	dir     string // everything of this instance is below dir
	conf    string
	lmtp    string // address for NewLMTP
	mailUID int
	mailGID int
}

// startDovecot runs Dovecot's LMTP service with a configuration from testdata that keeps
// every file and socket in a temporary directory. It knows the users in users.
func startDovecot(t *testing.T, users ...string) *dovecot {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin = "/usr/sbin/dovecot"
		if _, err := os.Stat(bin); err != nil {
			skipInterop(t, "dovecot is not installed (package dovecot-lmtpd)")
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		skipInterop(t, "dovecot --version: %v", err)
	}
	version := strings.Fields(string(out))[0]
	tmpl := filepath.Join("testdata", "dovecot-"+majorMinor(version)+".conf.tmpl")
	if _, err := os.Stat(tmpl); err != nil {
		skipInterop(t, "no configuration template for Dovecot %s (want %s)", version, tmpl)
	}
	if os.Getuid() != 0 {
		// Dovecot drops privileges to the mail user; without root that needs a
		// configuration of its own, which the template does not attempt.
		skipInterop(t, "the Dovecot interoperability test runs as root")
	}

	d := &dovecot{dir: t.TempDir(), mailUID: 65534, mailGID: 65534}
	if u, err := user.Lookup("nobody"); err == nil {
		d.mailUID, _ = strconv.Atoi(u.Uid)
		d.mailGID, _ = strconv.Atoi(u.Gid)
	}
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	d.lmtp = "unix:" + filepath.Join(d.dir, "lmtp")
	if len(filepath.Join(d.dir, "run", "replication-notify-fifo")) > 100 {
		t.Fatalf("temporary directory %s is too long for unix socket paths", d.dir)
	}
	// The mail user must be able to reach and write the mail directory.
	for _, dir := range []string{filepath.Dir(d.dir), d.dir} {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	mail := filepath.Join(d.dir, "mail")
	if err := os.Mkdir(mail, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mail, d.mailUID, d.mailGID); err != nil {
		t.Fatal(err)
	}
	var passwd strings.Builder
	for _, u := range users {
		fmt.Fprintf(&passwd, "%s:{PLAIN}unused\n", u)
	}
	if err := os.WriteFile(filepath.Join(d.dir, "users"), []byte(passwd.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := template.ParseFiles(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := conf.Execute(&buf, map[string]any{"Dir": d.dir, "MailUID": d.mailUID, "MailGID": d.mailGID}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.conf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	var output bytes.Buffer
	cmd := exec.Command(bin, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// The master process takes its children down with it on SIGTERM.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
			t.Logf("dovecot output:\n%s\ndovecot.log:\n%s", output.Bytes(), log)
		}
	})

	sock := strings.TrimPrefix(d.lmtp, "unix:")
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			conn.Close()
			return d
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
			t.Fatalf("dovecot exited: %s\n%s", output.Bytes(), log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot's LMTP socket did not appear: %v", err)
		}
	}
}

func majorMinor(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

// newMessages returns the contents of the messages in a user's new/.
func (d *dovecot) newMessages(t *testing.T, user string) []string {
	t.Helper()
	dir := filepath.Join(d.dir, "mail", "example.org", user, "new")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	var msgs []string
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, string(data))
	}
	return msgs
}

// TestDovecotLMTP delivers through a real Dovecot LMTP server: two known recipients (one
// with a detail) and one that Dovecot refuses, with 8-bit data and lines that need
// dot-stuffing.
func TestDovecotLMTP(t *testing.T) {
	d := startDovecot(t, "alice@example.org", "bob@example.org")
	c, err := NewLMTP(d.lmtp, "mx.example")
	if err != nil {
		t.Fatal(err)
	}
	c.CommandTimeout, c.DataTimeout = 20*time.Second, 30*time.Second
	body := "From: Sender <sender@remote.example>\n" +
		"Subject: mxward interop\n" +
		"Content-Type: text/plain; charset=utf-8\n" +
		"Content-Transfer-Encoding: 8bit\n" +
		"\n" +
		"Grüße aus der Ferne.\r\n" +
		".\n" +
		"..two dots\n" +
		".one dot\n" +
		"last line without newline"
	targets := []Target{
		{Rcpt: "alice@example.org", Mailbox: Mailbox{Domain: "example.org", User: "alice"}},
		{Rcpt: "nobody-here@example.org", Mailbox: Mailbox{Domain: "example.org", User: "nobody-here"}},
		{Rcpt: "lists@example.org", Mailbox: Mailbox{Domain: "example.org", User: "bob", Separator: "+", Detail: "lists"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := c.Deliver(ctx, Envelope{From: "sender@remote.example", EightBit: true}, strings.NewReader(body), targets)
	checkResults(t, res, targets, []wantResult{
		{Delivered, 250, "2.0.0", "Saved"},
		{Bounced, 550, "5.1.1", "doesn't exist"},
		{Delivered, 250, "2.0.0", "Saved"},
	})

	wantBody := strings.ReplaceAll(body, "\r\n", "\n") + "\n"
	for _, u := range []string{"alice", "bob"} {
		msgs := d.newMessages(t, u)
		if len(msgs) != 1 {
			t.Fatalf("%s has %d new messages, want 1", u, len(msgs))
		}
		m := msgs[0]
		if !strings.HasPrefix(m, "Return-Path: <sender@remote.example>\n") {
			t.Errorf("%s: message does not start with the envelope sender:\n%s", u, m)
		}
		if !strings.Contains(m, "by ") || !strings.Contains(m, "(envelope-from <sender@remote.example>)") {
			t.Errorf("%s: no Received header from Dovecot:\n%s", u, m)
		}
		// Dovecot stores LF line ends: the message must come back as sent, unstuffed.
		if _, stored, ok := strings.Cut(m, "From: Sender"); !ok || "From: Sender"+stored != wantBody {
			t.Errorf("%s: stored message\n%q\nwant it to end with\n%q", u, m, wantBody)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "mail", "example.org", "nobody-here")); err == nil {
		t.Error("a mailbox was created for the refused recipient")
	}
}

// TestDovecotReadsMaildir stores a message with Maildir where Dovecot keeps its mail and has
// doveadm read it back: the file name, size field and content must make sense to it.
func TestDovecotReadsMaildir(t *testing.T) {
	d := startDovecot(t, "carol@example.org")
	doveadm, err := exec.LookPath("doveadm")
	if err != nil {
		skipInterop(t, "doveadm is not installed (package dovecot-core)")
	}
	md, err := NewMaildir(filepath.Join(d.dir, "mail", "%d", "%u"), "mx.example")
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: stored by mxward\r\nX-Test: 1\r\n\r\nhello\r\nworld\r\n"
	res := md.Deliver(context.Background(), Envelope{From: "sender@remote.example"}, strings.NewReader(body),
		[]Target{{Rcpt: "carol@example.org", Mailbox: Mailbox{Domain: "example.org", User: "carol"}}})
	if res[0].Status() != Delivered {
		t.Fatal(res[0].Reply())
	}
	// Hand the mailbox to the mail user, as a deployment running mxward as that user would
	// have it.
	box := filepath.Join(d.dir, "mail", "example.org")
	err = filepath.Walk(box, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, d.mailUID, d.mailGID)
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := d.newMessages(t, "carol")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	physical := len(msgs[0])
	virtual := physical + strings.Count(msgs[0], "\n") // as IMAP sees it, with CRLF

	out, err := exec.Command(doveadm, "-c", d.conf, "fetch", "-u", "carol@example.org",
		"size.physical size.virtual hdr.subject guid", "mailbox", "INBOX", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("doveadm fetch: %v\n%s", err, out)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			fields[k] = v
		}
	}
	if fields["size.physical"] != strconv.Itoa(physical) || fields["size.virtual"] != strconv.Itoa(virtual) {
		t.Errorf("doveadm sizes %s/%s, want %d/%d\n%s", fields["size.physical"], fields["size.virtual"], physical, virtual, out)
	}
	if fields["hdr.subject"] != "stored by mxward" {
		t.Errorf("doveadm subject %q\n%s", fields["hdr.subject"], out)
	}
	if !regexp.MustCompile(`^\d+\.M\d+P\d+Q\d+R[0-9a-f]+\.mx\.example,S=` + strconv.Itoa(physical) + `$`).MatchString(fields["guid"]) {
		t.Errorf("doveadm guid %q does not name our file", fields["guid"])
	}
}
