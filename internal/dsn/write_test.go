package dsn

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"mxward/internal/spool"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	received = time.Date(2026, 3, 10, 9, 14, 2, 0, time.UTC)
	reported = time.Date(2026, 3, 12, 9, 14, 5, 0, time.FixedZone("", 3600))
)

// fixed makes a Message whose output is the same on every run.
func fixed(m Message) Message {
	m.ReportingMTA = "mx.example.org"
	m.Date = reported
	m.MessageID = "dsn.01JABCDEF@mx.example.org"
	m.Boundary = "=_mxward_dsn_boundary_0123456789"
	return m
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenCases are the reports kept byte for byte in testdata/*.golden.
func goldenCases() []struct {
	name     string
	msg      Message
	original string
	third    string // media type of the returned content
	full     bool   // the whole original is returned
} {
	return []struct {
		name     string
		msg      Message
		original string
		third    string
		full     bool
	}{
		{
			name: "failed-hdrs",
			msg: fixed(Message{
				Original: spool.Envelope{From: "alice@example.net", RET: "HDRS", BodyType: spool.Body7Bit,
					Size: 483, ReceivedAt: received},
				QueueID: "01JABCDEF",
				Recipients: []RecipientStatus{{
					Rcpt: "bob@example.com", Action: ActionFailed, Status: "5.1.1",
					RemoteMTA:      "dns; mx1.example.com",
					DiagnosticCode: "smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
					LastAttempt:    reported.Add(-time.Minute),
				}},
			}),
			original: "original.eml",
			third:    "text/rfc822-headers",
		},
		{
			name: "delayed",
			msg: fixed(Message{
				// RET=FULL is honoured only for failures; a delay returns the headers.
				Original: spool.Envelope{From: "alice@example.net", RET: "FULL", Size: 483, ReceivedAt: received},
				Recipients: []RecipientStatus{{
					Rcpt: "carol@example.com", Action: ActionDelayed, Status: "4.4.1",
					RemoteMTA: "mx2.example.com",
					// A multi-line reply, as the SMTP client hands it over.
					DiagnosticCode: "421-4.7.0 Try again later, closing connection.\r\n421 4.7.0 See the postmaster page for details.",
					LastAttempt:    reported.Add(-2 * time.Minute),
					WillRetryUntil: received.Add(5 * 24 * time.Hour),
				}},
			}),
			original: "original.eml",
			third:    "text/rfc822-headers",
		},
		{
			name: "orcpt-envid",
			msg: fixed(Message{
				Original: spool.Envelope{From: "alice@example.net", RET: "FULL", EnvID: "QQ314159",
					Size: 483, ReceivedAt: received},
				Recipients: []RecipientStatus{
					{
						Rcpt: "bob@example.com", ORCPT: "rfc822;bob@example.com", Action: ActionFailed,
						Status: "5.2.2", RemoteMTA: "dns; mx1.example.com",
						DiagnosticCode: "smtp; 552 5.2.2 Mailbox full",
					},
					{
						// Rewritten by an alias: the original recipient differs.
						Rcpt: "dave@example.com", ORCPT: "rfc822;d.jones@example.org", Action: ActionFailed,
						Status:         "4.4.7",
						DiagnosticCode: "x-mxward; message expired after 5 days in the queue",
					},
				},
			}),
			original: "original.eml",
			third:    "message/rfc822",
			full:     true,
		},
		{
			name: "smtputf8",
			msg: fixed(Message{
				Original: spool.Envelope{From: "jürgen@bücher.example", SMTPUTF8: true,
					BodyType: spool.Body8BitMIME, Size: 488, ReceivedAt: received},
				Recipients: []RecipientStatus{{
					Rcpt: "zoë@例え.example", ORCPT: "utf-8;zoë@例え.example", Action: ActionFailed,
					Status: "5.1.1", RemoteMTA: "dns; mx.xn--r8jz45g.example",
					DiagnosticCode: "smtp; 550 5.1.1 <zoë@例え.example>: no such user",
				}},
			}),
			original: "original-utf8.eml",
			third:    "message/global",
			full:     true,
		},
		{
			name: "delivered",
			msg: fixed(Message{
				Original: spool.Envelope{From: "alice@example.net", Size: 483, ReceivedAt: received},
				Recipients: []RecipientStatus{
					{Rcpt: "bob@example.com", Action: ActionDelivered, Status: "2.0.0",
						RemoteMTA: "dns; mx1.example.com", DiagnosticCode: "smtp; 250 2.0.0 Ok: queued as 4XyZ"},
					{Rcpt: "team@example.com", Action: ActionRelayed},
				},
			}),
			original: "original.eml",
			third:    "text/rfc822-headers",
		},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			orig := readFixture(t, tc.original)
			var out bytes.Buffer
			if err := Write(&out, tc.msg, bytes.NewReader(orig)); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s (run with -update after checking):\n%s", golden, out.Bytes())
			}

			d := parseDSN(t, out.Bytes())
			d.check(t, tc.msg)
			if got := d.parts[2].mediaType; got != tc.third {
				t.Errorf("third part is %s, want %s", got, tc.third)
			}
			body := d.parts[2].body
			if tc.full {
				if !bytes.Equal(body, orig) {
					t.Errorf("returned message differs from the original:\n%s", body)
				}
			} else {
				headers, _, _ := bytes.Cut(orig, []byte("\r\n\r\n"))
				if want := append(headers, "\r\n"...); !bytes.Equal(body, want) {
					t.Errorf("returned headers = %q, want %q", body, want)
				}
			}
		})
	}
}

// parsedDSN is a DSN as go-message reads it.
type parsedDSN struct {
	header     mail.Header
	parts      []parsedPart
	perMessage textproto.Header
	recipients []textproto.Header
}

type parsedPart struct {
	mediaType string
	params    map[string]string
	header    message.Header
	body      []byte
}

// parseDSN reads a DSN with go-message, failing t unless it is a well-formed
// multipart/report of delivery-status type whose status part is a sequence of header blocks.
func parseDSN(t testing.TB, data []byte) parsedDSN {
	t.Helper()
	checkWire(t, data)
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("read DSN: %v\n%s", err, data)
	}
	d := parsedDSN{header: mr.Header}
	mt, params, err := mr.Header.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("top-level Content-Type = %q %v (%v), want multipart/report; report-type=delivery-status", mt, params, err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read part %d: %v", len(d.parts)+1, err)
		}
		h := headerOf(p.Header)
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("read part %d body: %v", len(d.parts)+1, err)
		}
		mt, params, err := h.ContentType()
		if err != nil {
			t.Fatalf("part %d Content-Type: %v", len(d.parts)+1, err)
		}
		d.parts = append(d.parts, parsedPart{mediaType: mt, params: params, header: h, body: body})
	}
	if len(d.parts) != 3 {
		t.Fatalf("DSN has %d parts, want 3", len(d.parts))
	}
	if mt := d.parts[0].mediaType; mt != "text/plain" {
		t.Errorf("first part is %s, want text/plain", mt)
	}
	switch mt := d.parts[1].mediaType; mt {
	case "message/delivery-status", "message/global-delivery-status":
	default:
		t.Fatalf("second part is %s, want a delivery-status type", mt)
	}
	br := bufio.NewReader(bytes.NewReader(d.parts[1].body))
	if d.perMessage, err = textproto.ReadHeader(br); err != nil {
		t.Fatalf("per-message fields: %v\n%s", err, d.parts[1].body)
	}
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("per-recipient fields %d: %v\n%s", len(d.recipients)+1, err, d.parts[1].body)
		}
		d.recipients = append(d.recipients, h)
	}
	return d
}

// headerOf returns the MIME header of a part, which the mail reader offers as inline or
// attachment by its type.
func headerOf(ph mail.PartHeader) message.Header {
	switch ph := ph.(type) {
	case *mail.InlineHeader:
		return ph.Header
	case *mail.AttachmentHeader:
		return ph.Header
	}
	panic(fmt.Sprintf("unexpected part header %T", ph))
}

// check compares what a reader of d learns with what msg said.
func (d parsedDSN) check(t testing.TB, msg Message) {
	t.Helper()
	subject, err := d.header.Subject()
	if want := Subject(mostSevere(msg.Recipients)); err != nil || subject != want {
		t.Errorf("Subject = %q (%v), want %q", subject, err, want)
	}
	if got := d.header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", got)
	}
	if !msg.Date.IsZero() {
		if date, err := d.header.Date(); err != nil || !date.Equal(msg.Date) {
			t.Errorf("Date = %v (%v), want %v", date, err, msg.Date)
		}
	}
	from, err := d.header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "MAILER-DAEMON@"+msg.ReportingMTA {
		t.Errorf("From = %v (%v)", from, err)
	}
	if got, want := d.perMessage.Get("Reporting-Mta"), "dns; "+msg.ReportingMTA; got != want {
		t.Errorf("Reporting-MTA = %q, want %q", got, want)
	}
	if got := d.perMessage.Get("Original-Envelope-Id"); got != msg.Original.EnvID {
		t.Errorf("Original-Envelope-Id = %q, want %q", got, msg.Original.EnvID)
	}
	if !msg.Original.ReceivedAt.IsZero() {
		if got, err := netmail.ParseDate(d.perMessage.Get("Arrival-Date")); err != nil || !got.Equal(msg.Original.ReceivedAt) {
			t.Errorf("Arrival-Date = %v (%v), want %v", got, err, msg.Original.ReceivedAt)
		}
	}
	if len(d.recipients) != len(msg.Recipients) {
		t.Fatalf("%d recipient groups, want %d", len(d.recipients), len(msg.Recipients))
	}
	for i, rs := range msg.Recipients {
		h := d.recipients[i]
		typ := "rfc822"
		if !ascii(rs.Rcpt) {
			typ = "utf-8"
		}
		if got, want := h.Get("Final-Recipient"), typ+"; "+rs.Rcpt; got != want {
			t.Errorf("recipient %d: Final-Recipient = %q, want %q", i, got, want)
		}
		if got := h.Get("Original-Recipient"); got != rs.ORCPT {
			t.Errorf("recipient %d: Original-Recipient = %q, want %q", i, got, rs.ORCPT)
		}
		if got := Action(h.Get("Action")); got != rs.Action {
			t.Errorf("recipient %d: Action = %q, want %q", i, got, rs.Action)
		}
		if got := h.Get("Status"); got != rs.status() {
			t.Errorf("recipient %d: Status = %q, want %q", i, got, rs.status())
		}
		if rs.DiagnosticCode != "" {
			diag := h.Get("Diagnostic-Code")
			want := strings.Join(strings.Fields(untyped(rs.DiagnosticCode)), " ")
			if untyped(diag) != want {
				t.Errorf("recipient %d: Diagnostic-Code = %q, want the reply %q", i, diag, want)
			}
			if !strings.Contains(string(d.parts[0].body), want[:min(len(want), 30)]) {
				t.Errorf("recipient %d: the notification text does not quote the reply", i)
			}
		}
		if retry := h.Get("Will-Retry-Until"); (retry != "") != (rs.Action == ActionDelayed && !rs.WillRetryUntil.IsZero()) {
			t.Errorf("recipient %d: Will-Retry-Until = %q for %s", i, retry, rs.Action)
		}
		if !strings.Contains(string(d.parts[0].body), "<"+rs.Rcpt+">") {
			t.Errorf("recipient %d: the notification text does not name %s", i, rs.Rcpt)
		}
	}
}

// checkWire fails t unless data has only CRLF line ends and no line over 998 octets.
func checkWire(t testing.TB, data []byte) {
	t.Helper()
	for i, line := range bytes.Split(data, []byte("\r\n")) {
		if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
			t.Fatalf("line %d has a bare CR or LF at %d: %q", i+1, j, line)
		}
		if len(line) > maxLine {
			t.Fatalf("line %d is %d octets long", i+1, len(line))
		}
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		t.Fatal("output does not end in CRLF")
	}
}

func TestGlobalTypes(t *testing.T) {
	// A UTF-8 address makes the report global even if the original was not SMTPUTF8.
	tests := []struct {
		name   string
		env    spool.Envelope
		rcpt   RecipientStatus
		global bool
	}{
		{"ascii", spool.Envelope{From: "a@example.net"}, RecipientStatus{Rcpt: "b@example.com"}, false},
		{"smtputf8 flag", spool.Envelope{From: "a@example.net", SMTPUTF8: true}, RecipientStatus{Rcpt: "b@example.com"}, true},
		{"utf-8 sender", spool.Envelope{From: "ä@example.net"}, RecipientStatus{Rcpt: "b@example.com"}, true},
		{"utf-8 recipient", spool.Envelope{From: "a@example.net"}, RecipientStatus{Rcpt: "b@exämple.com"}, true},
		{"utf-8 orcpt", spool.Envelope{From: "a@example.net"}, RecipientStatus{Rcpt: "b@example.com", ORCPT: "utf-8;ö@example.com"}, true},
		// A remote reply in 8-bit is no reason for global types; it is made ASCII.
		{"utf-8 reply", spool.Envelope{From: "a@example.net"}, RecipientStatus{Rcpt: "b@example.com", DiagnosticCode: "550 nicht zustellbar: Empfänger unbekannt"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env.RET = "FULL"
			tt.rcpt.Action = ActionFailed
			msg := fixed(Message{Original: tt.env, Recipients: []RecipientStatus{tt.rcpt}})
			var out bytes.Buffer
			if err := Write(&out, msg, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
				t.Fatal(err)
			}
			d := parseDSN(t, out.Bytes())
			wantStatus, wantOrig, charset := "message/delivery-status", "message/rfc822", "us-ascii"
			if tt.global {
				wantStatus, wantOrig, charset = "message/global-delivery-status", "message/global", "utf-8"
			}
			if d.parts[1].mediaType != wantStatus || d.parts[2].mediaType != wantOrig {
				t.Errorf("types %s, %s; want %s, %s", d.parts[1].mediaType, d.parts[2].mediaType, wantStatus, wantOrig)
			}
			if got := d.parts[0].params["charset"]; got != charset {
				t.Errorf("text charset %q, want %q", got, charset)
			}
			if !tt.global && !ascii(out.String()) {
				t.Errorf("a report without global types holds 8-bit data:\n%s", out.Bytes())
			}
			env := msg.Envelope()
			if env.SMTPUTF8 != tt.global {
				t.Errorf("Envelope().SMTPUTF8 = %v, want %v", env.SMTPUTF8, tt.global)
			}
		})
	}
}

func TestReturnedContent(t *testing.T) {
	const orig = "Subject: test\r\nX-Tag: 1\r\n\r\nbody line\r\n"
	const headers = "Subject: test\r\nX-Tag: 1\r\n"
	tests := []struct {
		name     string
		ret      string
		body     spool.BodyType
		size     int64
		max      int64
		action   Action
		wantType string
		want     string
		eightBit bool
	}{
		{"failed FULL", "FULL", "", 40, 0, ActionFailed, "message/rfc822", orig, false},
		{"failed full lower case", "full", "", 40, 0, ActionFailed, "message/rfc822", orig, false},
		{"failed HDRS", "HDRS", "", 40, 0, ActionFailed, "text/rfc822-headers", headers, false},
		{"failed no RET small", "", "", 40, 0, ActionFailed, "message/rfc822", orig, false},
		{"failed no RET at limit", "", "", DefaultMaxOriginal, 0, ActionFailed, "message/rfc822", orig, false},
		{"failed no RET large", "", "", DefaultMaxOriginal + 1, 0, ActionFailed, "text/rfc822-headers", headers, false},
		{"failed no RET own limit", "", "", 41, 40, ActionFailed, "text/rfc822-headers", headers, false},
		{"failed no RET negative limit", "", "", 40, -1, ActionFailed, "text/rfc822-headers", headers, false},
		{"failed no RET unknown size", "", "", 0, 0, ActionFailed, "text/rfc822-headers", headers, false},
		{"failed FULL large", "FULL", "", 1 << 30, 0, ActionFailed, "message/rfc822", orig, false},
		{"failed FULL 8bit", "FULL", spool.Body8BitMIME, 40, 0, ActionFailed, "message/rfc822", orig, true},
		{"failed FULL binary", "FULL", spool.BodyBinaryMIME, 40, 0, ActionFailed, "text/rfc822-headers", headers, true},
		{"delayed FULL", "FULL", "", 40, 0, ActionDelayed, "text/rfc822-headers", headers, false},
		{"delayed no RET", "", "", 40, 0, ActionDelayed, "text/rfc822-headers", headers, false},
		{"delivered FULL", "FULL", "", 40, 0, ActionDelivered, "text/rfc822-headers", headers, false},
		{"relayed no RET", "", "", 40, 0, ActionRelayed, "text/rfc822-headers", headers, false},
		{"expanded", "", spool.Body7Bit, 40, 0, ActionExpanded, "text/rfc822-headers", headers, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := fixed(Message{
				Original:    spool.Envelope{From: "a@example.net", RET: tt.ret, BodyType: tt.body, Size: tt.size},
				Recipients:  []RecipientStatus{{Rcpt: "b@example.com", Action: tt.action}},
				MaxOriginal: tt.max,
			})
			var out bytes.Buffer
			if err := Write(&out, msg, strings.NewReader(orig)); err != nil {
				t.Fatal(err)
			}
			d := parseDSN(t, out.Bytes())
			d.check(t, msg)
			p := d.parts[2]
			if p.mediaType != tt.wantType || string(p.body) != tt.want {
				t.Errorf("returned %s %q, want %s %q", p.mediaType, p.body, tt.wantType, tt.want)
			}
			if got := p.header.Get("Content-Transfer-Encoding") == "8bit"; got != tt.eightBit {
				t.Errorf("returned part 8bit = %v, want %v", got, tt.eightBit)
			}
			wantBody := spool.Body7Bit
			if tt.eightBit {
				wantBody = spool.Body8BitMIME
			}
			if env := msg.Envelope(); env.BodyType != wantBody {
				t.Errorf("Envelope().BodyType = %s, want %s", env.BodyType, wantBody)
			}
		})
	}
}

func TestNoOriginal(t *testing.T) {
	msg := fixed(Message{
		Original:   spool.Envelope{From: "a@example.net", RET: "FULL", BodyType: spool.Body8BitMIME},
		Recipients: []RecipientStatus{{Rcpt: "b@example.com", Action: ActionFailed}},
	})
	var out bytes.Buffer
	if err := Write(&out, msg, nil); err != nil {
		t.Fatal(err)
	}
	checkWire(t, out.Bytes())
	mr, err := mail.CreateReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h := headerOf(p.Header)
		mt, _, _ := h.ContentType()
		types = append(types, mt)
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status" {
		t.Errorf("parts %v, want text/plain and message/delivery-status only", types)
	}
	if strings.Contains(out.String(), "8bit") {
		t.Errorf("without the 8-bit original the DSN still declares 8bit:\n%s", out.String())
	}
}

func TestEnvelope(t *testing.T) {
	msg := fixed(Message{
		Original:   spool.Envelope{From: "alice@example.net", RET: "HDRS", ReceivedAt: received},
		Recipients: []RecipientStatus{{Rcpt: "b@example.com", Action: ActionFailed}},
	})
	env := msg.Envelope()
	if env.From != "" {
		t.Errorf("DSN reverse-path %q, want the null reverse-path", env.From)
	}
	if len(env.Recipients) != 1 || env.Recipients[0].Addr != "alice@example.net" || env.Recipients[0].Notify != "NEVER" {
		t.Errorf("DSN recipients %+v, want alice@example.net with NOTIFY=NEVER", env.Recipients)
	}
	// A DSN can never ask for a DSN about itself.
	for _, a := range []Action{ActionFailed, ActionDelayed, ActionDelivered} {
		if Wanted(env, env.Recipients[0], a) {
			t.Errorf("Wanted for the DSN's own %s = true", a)
		}
	}
	msg.To = "postmaster@example.net"
	if got := msg.Envelope().Recipients[0].Addr; got != "postmaster@example.net" {
		t.Errorf("with To set, the DSN goes to %q", got)
	}
}

func TestWriteErrors(t *testing.T) {
	good := func() Message {
		return fixed(Message{
			Original:   spool.Envelope{From: "a@example.net"},
			Recipients: []RecipientStatus{{Rcpt: "b@example.com", Action: ActionFailed}},
		})
	}
	tests := []struct {
		name   string
		modify func(*Message)
		is     error
	}{
		{"null sender", func(m *Message) { m.Original.From = "" }, ErrNullSender},
		{"null sender in brackets", func(m *Message) { m.Original.From = "<>" }, ErrNullSender},
		{"no reporting MTA", func(m *Message) { m.ReportingMTA = "" }, nil},
		{"reporting MTA with space", func(m *Message) { m.ReportingMTA = "mx example.org" }, nil},
		{"reporting MTA with line break", func(m *Message) { m.ReportingMTA = "mx.example.org\r\nBcc: x" }, nil},
		{"no recipients", func(m *Message) { m.Recipients = nil }, nil},
		{"unknown action", func(m *Message) { m.Recipients[0].Action = "bounced" }, nil},
		{"empty recipient", func(m *Message) { m.Recipients[0].Rcpt = " \r\n" }, nil},
		{"bad boundary", func(m *Message) { m.Boundary = "a\"b" }, nil},
		{"long boundary", func(m *Message) { m.Boundary = strings.Repeat("b", 71) }, nil},
		{"bad Message-ID", func(m *Message) { m.MessageID = "no-at-sign" }, nil},
		{"Message-ID with brackets", func(m *Message) { m.MessageID = "<x@y>" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := good()
			tt.modify(&msg)
			var out bytes.Buffer
			err := Write(&out, msg, strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
			if err == nil {
				t.Fatalf("Write succeeded:\n%s", out.Bytes())
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Write error %v, want %v", err, tt.is)
			}
			if out.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing", out.Len())
			}
		})
	}

	t.Run("read error", func(t *testing.T) {
		boom := errors.New("disk on fire")
		err := Write(io.Discard, good(), io.MultiReader(strings.NewReader("Subject: x\r\n"), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "read original message") {
			t.Errorf("Write error %v, want the read error", err)
		}
	})
	t.Run("write error", func(t *testing.T) {
		boom := errors.New("connection lost")
		err := Write(failingWriter{boom}, good(), strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "write dsn") {
			t.Errorf("Write error %v, want the write error", err)
		}
	})
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestGeneratedIdentifiers(t *testing.T) {
	msg := Message{
		ReportingMTA: "mx.example.org",
		Original:     spool.Envelope{From: "a@example.net"},
		Recipients:   []RecipientStatus{{Rcpt: "b@example.com", Action: ActionFailed}},
	}
	seen := map[string]bool{}
	for range 3 {
		var out bytes.Buffer
		before := time.Now()
		if err := Write(&out, msg, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
		d := parseDSN(t, out.Bytes())
		d.check(t, msg)
		_, params, _ := d.header.ContentType()
		b := params["boundary"]
		if len(b) < 40 || !validBoundary(b) {
			t.Errorf("generated boundary %q", b)
		}
		id, err := d.header.MessageID()
		if err != nil || !strings.HasSuffix(id, "@mx.example.org") {
			t.Errorf("generated Message-ID %q (%v)", id, err)
		}
		if date, err := d.header.Date(); err != nil || date.Before(before.Truncate(time.Second)) {
			t.Errorf("Date %v (%v), want the time of the call", date, err)
		}
		if seen[b] || seen[id] {
			t.Errorf("boundary %q or Message-ID %q repeated", b, id)
		}
		seen[b], seen[id] = true, true
	}
}

// TestHostileText feeds recipient fields that try to inject header fields or whole
// recipient groups, and very long replies.
func TestHostileText(t *testing.T) {
	long := strings.Repeat("x", 5000)
	msg := fixed(Message{
		Original: spool.Envelope{From: "a@example.net\r\nBcc: victim@example.com", EnvID: "id\r\n\r\nAction: delivered"},
		Recipients: []RecipientStatus{{
			Rcpt:           "b@example.com\r\n\r\nFinal-Recipient: rfc822; forged@example.com",
			ORCPT:          "rfc822;b@example.com\nStatus: 2.0.0",
			Action:         ActionFailed,
			Status:         "5.1.1\r\nAction: delivered",
			RemoteMTA:      "mx.example.com\x00\x1b[31m",
			DiagnosticCode: "smtp; 550 " + long + " and then " + strings.Repeat("word ", 400),
		}},
	})
	var out bytes.Buffer
	if err := Write(&out, msg, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	d := parseDSN(t, out.Bytes())
	if len(d.recipients) != 1 {
		t.Fatalf("%d recipient groups, want 1", len(d.recipients))
	}
	h := d.recipients[0]
	if got := h.Get("Action"); got != "failed" {
		t.Errorf("Action = %q", got)
	}
	if got := h.Get("Status"); got != "5.0.0" {
		t.Errorf("Status = %q, want the generic 5.0.0 for a malformed status", got)
	}
	if vs := h.Values("Final-Recipient"); len(vs) != 1 || !strings.HasPrefix(vs[0], "rfc822; b@example.com ") {
		t.Errorf("Final-Recipient = %q", vs)
	}
	if d.header.Get("Bcc") != "" {
		t.Error("a Bcc field was injected into the DSN header")
	}
	if strings.ContainsAny(h.Get("Remote-Mta"), "\x00\x1b") {
		t.Errorf("Remote-MTA keeps control characters: %q", h.Get("Remote-Mta"))
	}
	diag := h.Get("Diagnostic-Code")
	if !strings.Contains(strings.ReplaceAll(diag, " ", ""), long) || !strings.HasSuffix(diag, "word") {
		t.Errorf("Diagnostic-Code lost text: %d octets", len(diag))
	}
}

func TestFieldFolding(t *testing.T) {
	tests := []string{
		"short",
		strings.Repeat("word ", 50),
		strings.Repeat("y", 3000),
		"a " + strings.Repeat("ü", 1500) + " b",
		" leading  and  doubled  spaces ",
		"a" + strings.Repeat(" ", 3000) + "b",
		strings.Repeat(" x", 1000),
	}
	for _, v := range tests {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		writeField(bw, "Diagnostic-Code", v)
		bw.Flush()
		checkWire(t, buf.Bytes())
		h, err := textproto.ReadHeader(bufio.NewReader(io.MultiReader(&buf, strings.NewReader("\r\n"))))
		if err != nil {
			t.Fatalf("read folded field: %v", err)
		}
		got := h.Get("Diagnostic-Code")
		// Folding may only add or remove white space between words.
		if strings.Join(strings.Fields(got), "") != strings.Join(strings.Fields(v), "") {
			t.Errorf("folded %q came back as %q", v, got)
		}
	}
}
