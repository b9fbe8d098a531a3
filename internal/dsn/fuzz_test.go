package dsn

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"

	"mxward/internal/spool"
)

// FuzzWrite writes DSNs for arbitrary originals and recipient texts. Whatever the input,
// Write must not panic, and what it writes must be CRLF-only with short lines, parse with
// go-message as a three-part multipart/report, and hold exactly one recipient group.
func FuzzWrite(f *testing.F) {
	orig := string(readFixture(f, "original.eml"))
	f.Add([]byte(orig), "bob@example.com", "rfc822;bob@example.com", "smtp; 550 5.1.1 no such user", "mx.example.com", "5.1.1", uint8(0), "HDRS", false)
	f.Add([]byte(orig), "bob@example.com", "", "421-4.7.0 later\r\n421 4.7.0 really", "dns; mx.example.com", "", uint8(1), "FULL", false)
	f.Add([]byte(readFixture(f, "original-utf8.eml")), "zoë@例え.example", "utf-8;zoë@例え.example", "550 nö", "", "5.1.1", uint8(0), "", true)
	f.Add([]byte("no headers\nbare LF\rbare CR"), "b@x\r\n\r\nFinal-Recipient: rfc822; forged", "x;y\nz", "\x00\xff\xfe", "\r\n", "5.1.1\r\nAction: x", uint8(2), "FULL", false)
	f.Add([]byte(strings.Repeat("X: "+strings.Repeat("y", 1500)+"\n", 3)), "b@example.com", ";", strings.Repeat("z", 3000), "a;b", "9.9.9", uint8(3), "", true)
	f.Add([]byte{}, " ", "", "", "", "", uint8(4), "HDRS", false)
	f.Add([]byte("--=_boundary\r\n\r\n--=_boundary--\r\n"), "b@example.com", "", "", "", "", uint8(0), "FULL", false)

	actions := []Action{ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded}
	f.Fuzz(func(t *testing.T, original []byte, rcpt, orcpt, diag, remote, status string, action uint8, ret string, smtputf8 bool) {
		msg := Message{
			ReportingMTA: "mx.example.org",
			Original: spool.Envelope{From: "alice@example.net", RET: ret, SMTPUTF8: smtputf8,
				Size: int64(len(original)), EnvID: diag},
			Recipients: []RecipientStatus{{
				Rcpt: rcpt, ORCPT: orcpt, Action: actions[int(action)%len(actions)], Status: status,
				RemoteMTA: remote, DiagnosticCode: diag,
			}},
			Date:      reported,
			MessageID: "fuzz@mx.example.org",
		}
		var out bytes.Buffer
		err := Write(&out, msg, bytes.NewReader(original))
		if (&report{}).text(rcpt) == "" {
			if err == nil {
				t.Fatalf("Write accepted the empty recipient %q", rcpt)
			}
			return
		}
		if err != nil {
			t.Fatalf("Write: %v", err)
		}
		d := parseDSN(t, out.Bytes())
		if len(d.recipients) != 1 {
			t.Fatalf("%d recipient groups, want 1:\n%s", len(d.recipients), d.parts[1].body)
		}
		h := d.recipients[0]
		if got := Action(h.Get("Action")); got != msg.Recipients[0].Action {
			t.Errorf("Action = %q, want %q", got, msg.Recipients[0].Action)
		}
		if got := h.Get("Status"); !validStatus(got) {
			t.Errorf("Status = %q", got)
		}
		if got := h.Values("Final-Recipient"); len(got) != 1 || !strings.Contains(got[0], "; ") {
			t.Errorf("Final-Recipient = %q", got)
		}
		if d.parts[1].mediaType == "message/delivery-status" && !ascii(string(d.parts[1].body)) {
			t.Errorf("message/delivery-status holds 8-bit data:\n%q", d.parts[1].body)
		}
		// A returned header section parses as one.
		br := bufio.NewReader(bytes.NewReader(d.parts[2].body))
		if _, err := textproto.ReadHeader(br); err != nil {
			t.Errorf("returned header section does not parse: %v", err)
		}
		if strings.HasSuffix(d.parts[2].mediaType, "headers") {
			if _, err := br.Peek(1); err != io.EOF {
				t.Errorf("%s part holds more than headers", d.parts[2].mediaType)
			}
		}
	})
}
