package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

const testBody = "Subject: test\r\n\r\nhello\r\n"

// sendOne dials srv, sends one message and quits, returning the result.
func sendOne(t *testing.T, srv *fakeServer, env Envelope, rcpts []Recipient, body string) (Result, error) {
	t.Helper()
	c := dialTest(t, srv.addr(), testOptions(t, Security{}))
	res, err := c.Send(context.Background(), env, rcpts, strings.NewReader(body))
	if len(res.Rcpts) != len(rcpts) {
		t.Fatalf("Send returned %d recipient results for %d recipients", len(res.Rcpts), len(rcpts))
	}
	c.Quit(context.Background())
	return res, err
}

func rcptsTo(addrs ...string) []Recipient {
	var rs []Recipient
	for _, a := range addrs {
		rs = append(rs, Recipient{Addr: a})
	}
	return rs
}

// TestSendCommands checks the exact command lines for the extension matrix: each ESMTP
// parameter is sent only when the server offered its extension.
func TestSendCommands(t *testing.T) {
	dsnRcpt := []Recipient{{Addr: "b+tag@example.net", Notify: "success,FAILURE", ORCPT: "rfc822;b+tag@example.net"}}
	dsnEnv := Envelope{From: "a@example.org", RET: "hdrs", EnvID: "id+1=2", Size: 1234}
	tests := []struct {
		name    string
		ext     []string
		env     Envelope
		rcpts   []Recipient
		want    []string // commands between EHLO and QUIT
		wantDSN bool
	}{
		{
			name:  "no extensions: no parameters at all",
			env:   dsnEnv,
			rcpts: dsnRcpt,
			want:  []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b+tag@example.net>", "DATA"},
		},
		{
			name:  "SIZE with a limit",
			ext:   []string{"SIZE 10000"},
			env:   Envelope{From: "a@example.org", Size: 1234},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org> SIZE=1234", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "SIZE without a limit",
			ext:   []string{"SIZE"},
			env:   Envelope{From: "a@example.org", Size: 99999999},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org> SIZE=99999999", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "SIZE offered, size unknown",
			ext:   []string{"SIZE 10000"},
			env:   Envelope{From: "a@example.org"},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "8BITMIME body",
			ext:   []string{"8BITMIME"},
			env:   Envelope{From: "a@example.org", Body: Body8BitMIME},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org> BODY=8BITMIME", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "7BIT body to an 8BITMIME server: no BODY",
			ext:   []string{"8BITMIME"},
			env:   Envelope{From: "a@example.org", Body: Body7Bit},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "SMTPUTF8 asked for",
			ext:   []string{"SMTPUTF8", "8BITMIME"},
			env:   Envelope{From: "a@example.org", Body: Body8BitMIME, SMTPUTF8: true},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org> BODY=8BITMIME SMTPUTF8", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "SMTPUTF8 implied by a UTF-8 recipient",
			ext:   []string{"SMTPUTF8"},
			env:   Envelope{From: "a@example.org"},
			rcpts: rcptsTo("bjørn@exämple.net"),
			want:  []string{"MAIL FROM:<a@example.org> SMTPUTF8", "RCPT TO:<bjørn@exämple.net>", "DATA"},
		},
		{
			name:  "SMTPUTF8 offered but not needed",
			ext:   []string{"SMTPUTF8"},
			env:   Envelope{From: "a@example.org"},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:    "DSN: RET, ENVID, NOTIFY and ORCPT, xtext-encoded",
			ext:     []string{"DSN", "SIZE 0"},
			env:     dsnEnv,
			rcpts:   dsnRcpt,
			wantDSN: true,
			want: []string{
				"MAIL FROM:<a@example.org> SIZE=1234 RET=HDRS ENVID=id+2B1+3D2",
				"RCPT TO:<b+tag@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Btag@example.net",
				"DATA",
			},
		},
		{
			name:    "DSN offered, no DSN parameters given",
			ext:     []string{"DSN"},
			env:     Envelope{From: "a@example.org"},
			rcpts:   rcptsTo("b@example.net"),
			wantDSN: true,
			want:    []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "null reverse-path",
			env:   Envelope{From: ""},
			rcpts: rcptsTo("b@example.net"),
			want:  []string{"MAIL FROM:<>", "RCPT TO:<b@example.net>", "DATA"},
		},
		{
			name:  "lockstep without PIPELINING",
			ext:   []string{"8BITMIME", "SIZE 100000", "DSN"},
			env:   Envelope{From: "a@example.org"},
			rcpts: rcptsTo("b@example.net", "c@example.net", "d@example.net"),
			want: []string{"MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "RCPT TO:<c@example.net>",
				"RCPT TO:<d@example.net>", "DATA"},
			wantDSN: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := (&fakeServer{Ext: tt.ext, Lockstep: true}).start(t)
			res, err := sendOne(t, srv, tt.env, tt.rcpts, testBody)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			for _, r := range res.Rcpts {
				if r.Err != nil || r.Reply.Code != 250 {
					t.Errorf("recipient %s: %v %v", r.Addr, r.Reply, r.Err)
				}
			}
			if res.Data == nil || res.Data.Code != 250 {
				t.Errorf("Data = %v, want 250", res.Data)
			}
			if res.DSN != tt.wantDSN {
				t.Errorf("DSN = %v, want %v", res.DSN, tt.wantDSN)
			}
			rec := srv.only()
			want := append(append([]string{"EHLO client.example.test"}, tt.want...), "QUIT")
			if got := rec.lines(); !slices.Equal(got, want) {
				t.Errorf("commands:\n got %q\nwant %q", got, want)
			}
			if len(rec.Messages) != 1 || rec.Messages[0] != testBody {
				t.Errorf("messages = %q, want [%q]", rec.Messages, testBody)
			}
		})
	}
}

// TestSendRefusedBeforeMail covers the checks made before MAIL: each must fail with a
// permanent, locally made reply, send nothing, and leave the connection usable.
func TestSendRefusedBeforeMail(t *testing.T) {
	tests := []struct {
		name     string
		ext      []string
		env      Envelope
		rcpts    []Recipient
		code     int
		enhanced string
	}{
		{"larger than SIZE", []string{"SIZE 1000"}, Envelope{From: "a@example.org", Size: 1001}, nil, 552, "5.3.4"},
		{"SMTPUTF8 asked for, not offered", []string{"8BITMIME"}, Envelope{From: "a@example.org", SMTPUTF8: true}, nil, 553, "5.6.7"},
		{"UTF-8 sender, SMTPUTF8 not offered", nil, Envelope{From: "jörg@example.org"}, nil, 553, "5.6.7"},
		{"UTF-8 recipient, SMTPUTF8 not offered", nil, Envelope{From: "a@example.org"}, rcptsTo("ü@example.net"), 553, "5.6.7"},
		{"8BITMIME body, not offered", []string{"SMTPUTF8"}, Envelope{From: "a@example.org", Body: Body8BitMIME}, nil, 554, "5.6.3"},
		{"BINARYMIME without CHUNKING", []string{"BINARYMIME", "8BITMIME"}, Envelope{From: "a@example.org", Body: BodyBinaryMIME}, nil, 554, "5.6.3"},
		{"REQUIRETLS without TLS", []string{"REQUIRETLS"}, Envelope{From: "a@example.org", RequireTLS: true}, nil, 550, "5.7.10"},
		{"invalid sender", nil, Envelope{From: "a b@example.org"}, nil, 553, "5.1.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := (&fakeServer{Ext: tt.ext}).start(t)
			c := dialTest(t, srv.addr(), testOptions(t, Security{}))
			rcpts := tt.rcpts
			if rcpts == nil {
				rcpts = rcptsTo("b@example.net")
			}
			res, err := c.Send(context.Background(), tt.env, rcpts, strings.NewReader(testBody))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Send error = %v, want *Error", err)
			}
			if !e.Local || e.Reply.Code != tt.code || e.Reply.Enhanced != tt.enhanced || !e.Permanent() {
				t.Errorf("error = %+v, want local permanent %d %s", e, tt.code, tt.enhanced)
			}
			for _, r := range res.Rcpts {
				if r.Err != err {
					t.Errorf("recipient %s: Err = %v, want the Send error", r.Addr, r.Err)
				}
			}
			if !c.Usable() {
				t.Error("connection unusable after a local refusal")
			}
			c.Quit(context.Background())
			rec := srv.only()
			if want := []string{"EHLO client.example.test", "QUIT"}; !slices.Equal(rec.lines(), want) {
				t.Errorf("commands = %q, want %q", rec.lines(), want)
			}
		})
	}
}

// TestInvalidRecipientNotSent: an unusable address is refused locally; the others go.
func TestInvalidRecipientNotSent(t *testing.T) {
	srv := (&fakeServer{}).start(t)
	res, err := sendOne(t, srv, Envelope{From: "a@example.org"},
		rcptsTo("bad address@example.net", "b@example.net", "x@example.net>\r\nDATA"), testBody)
	if err != nil {
		t.Fatal(err)
	}
	for i, wantOK := range []bool{false, true, false} {
		r := res.Rcpts[i]
		var e *Error
		if wantOK != (r.Err == nil) {
			t.Errorf("recipient %q: Err = %v", r.Addr, r.Err)
		}
		if !wantOK && (!errors.As(r.Err, &e) || !e.Local || e.Reply.Enhanced != "5.1.3") {
			t.Errorf("recipient %q: Err = %v, want local 5.1.3", r.Addr, r.Err)
		}
	}
	rec := srv.only()
	if rec.count("RCPT") != 1 || rec.count("RCPT TO:<b@example.net>") != 1 {
		t.Errorf("commands = %q", rec.lines())
	}
}

// TestPipelining: the server withholds every reply until MAIL, all RCPTs and DATA have
// arrived, so the test only passes if they went in one batch (RFC 2920).
func TestPipelining(t *testing.T) {
	srv := (&fakeServer{
		Ext:       []string{"PIPELINING", "8BITMIME"},
		HoldBatch: 4, // 3 RCPT + DATA
		Reply: func(line string, _ bool) string {
			if line == "RCPT TO:<c@example.net>" {
				return "550 5.1.1 No such user\r\n"
			}
			return ""
		},
	}).start(t)
	res, err := sendOne(t, srv, Envelope{From: "a@example.org"}, rcptsTo("b@example.net", "c@example.net", "d@example.net"), testBody)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	var e *Error
	if r := res.Rcpts[1]; !errors.As(r.Err, &e) || !e.Permanent() || r.Reply.Enhanced != "5.1.1" || e.Stage != "rcpt" {
		t.Errorf("rejected recipient: %+v", r)
	}
	for _, i := range []int{0, 2} {
		if r := res.Rcpts[i]; r.Err != nil || r.Reply.Code != 250 {
			t.Errorf("recipient %s: %+v", r.Addr, r)
		}
	}
	if res.Data == nil || res.Data.Code != 250 {
		t.Errorf("Data = %v", res.Data)
	}
	rec := srv.only()
	want := []string{"EHLO client.example.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>",
		"RCPT TO:<c@example.net>", "RCPT TO:<d@example.net>", "DATA", "QUIT"}
	if !slices.Equal(rec.lines(), want) {
		t.Errorf("commands = %q, want %q", rec.lines(), want)
	}
	if len(rec.Messages) != 1 {
		t.Errorf("messages = %d", len(rec.Messages))
	}
}

// TestPipeliningManyRecipients sends more recipients than one pipelining window.
func TestPipeliningManyRecipients(t *testing.T) {
	const n = 2*pipelineWindow + 17
	srv := (&fakeServer{Ext: []string{"PIPELINING"}}).start(t)
	var rcpts []Recipient
	for i := range n {
		rcpts = append(rcpts, Recipient{Addr: fmt.Sprintf("user%03d@example.net", i)})
	}
	res, err := sendOne(t, srv, Envelope{From: "a@example.org"}, rcpts, testBody)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Rcpts {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Addr, r.Err)
		}
	}
	rec := srv.only()
	if rec.count("RCPT") != n || len(rec.Messages) != 1 {
		t.Errorf("server saw %d RCPT and %d messages", rec.count("RCPT"), len(rec.Messages))
	}
	for i, c := range rec.Cmds[2 : 2+n] {
		if want := "RCPT TO:<" + rcpts[i].Addr + ">"; c.Line != want {
			t.Fatalf("command %d = %q, want %q", i, c.Line, want)
		}
	}
}

// TestAllRecipientsRefused: no DATA in lockstep (RSET instead); a pipelined DATA is
// refused by the server and the transaction reset. The connection then carries the next
// message.
func TestAllRecipientsRefused(t *testing.T) {
	refuse := func(line string, _ bool) string {
		if strings.HasPrefix(line, "RCPT TO:<no") {
			return "550 5.1.1 No such user\r\n"
		}
		return ""
	}
	for _, pipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := &fakeServer{Reply: refuse, Lockstep: !pipelining}
			want := []string{"EHLO client.example.test", "MAIL FROM:<a@example.org>", "RCPT TO:<no1@example.net>",
				"RCPT TO:<no2@example.net>", "RSET", "MAIL FROM:<a@example.org>", "RCPT TO:<yes@example.net>", "DATA", "QUIT"}
			if pipelining {
				srv.Ext = []string{"PIPELINING"}
				want = slices.Insert(want, 4, "DATA")
			}
			srv.start(t)
			c := dialTest(t, srv.addr(), testOptions(t, Security{}))
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("no1@example.net", "no2@example.net"), strings.NewReader(testBody))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.Data != nil {
				t.Errorf("Data = %v, want nil", res.Data)
			}
			for _, r := range res.Rcpts {
				var e *Error
				if !errors.As(r.Err, &e) || !e.Permanent() || r.Reply.Code != 550 {
					t.Errorf("recipient %s: %+v", r.Addr, r)
				}
			}
			if !c.Usable() {
				t.Fatal("connection unusable")
			}
			if _, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("yes@example.net"), strings.NewReader(testBody)); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			c.Quit(context.Background())
			rec := srv.only()
			if !slices.Equal(rec.lines(), want) {
				t.Errorf("commands:\n got %q\nwant %q", rec.lines(), want)
			}
			if len(rec.Messages) != 1 {
				t.Errorf("messages = %d, want 1", len(rec.Messages))
			}
		})
	}
}

// TestMailRefused: a refused MAIL fails every recipient with its reply, not with the 503
// the server gives to RCPTs that were pipelined after it.
func TestMailRefused(t *testing.T) {
	for _, pipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := &fakeServer{Reply: func(line string, _ bool) string {
				switch {
				case strings.HasPrefix(line, "MAIL"):
					return "550 5.7.1 Sender refused\r\n"
				case strings.HasPrefix(line, "RCPT"), line == "DATA":
					return "503 5.5.1 Need MAIL first\r\n"
				}
				return ""
			}}
			if pipelining {
				srv.Ext = []string{"PIPELINING"}
			}
			srv.start(t)
			c := dialTest(t, srv.addr(), testOptions(t, Security{}))
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net", "c@example.net"), strings.NewReader(testBody))
			var e *Error
			if !errors.As(err, &e) || e.Stage != "mail" || e.Reply.Enhanced != "5.7.1" || !e.Permanent() {
				t.Fatalf("Send error = %v", err)
			}
			for _, r := range res.Rcpts {
				if r.Err != err || r.Reply.Code != 0 {
					t.Errorf("recipient %s: %+v, want the MAIL error and no reply", r.Addr, r)
				}
			}
			if !c.Usable() {
				t.Error("connection unusable after a refused MAIL")
			}
			c.Close()
			rec := srv.only()
			wantRcpt := 0
			if pipelining {
				wantRcpt = 2
			}
			if rec.count("RCPT") != wantRcpt {
				t.Errorf("commands = %q", rec.lines())
			}
		})
	}
}

// Test421: a 421 ends the session; every recipient without an answer is temporary.
func Test421(t *testing.T) {
	for _, pipelining := range []bool{false, true} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := &fakeServer{Reply: func(line string, _ bool) string {
				if line == "RCPT TO:<c@example.net>" {
					return "421 4.3.2 Shutting down\r\n"
				}
				return ""
			}}
			if pipelining {
				srv.Ext = []string{"PIPELINING"}
			}
			srv.start(t)
			c := dialTest(t, srv.addr(), testOptions(t, Security{}))
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org"},
				rcptsTo("b@example.net", "c@example.net", "d@example.net"), strings.NewReader(testBody))
			var e *Error
			if !errors.As(err, &e) || e.Reply.Code != 421 || !e.Temporary() {
				t.Fatalf("Send error = %v, want 421", err)
			}
			if res.Rcpts[0].Err != nil {
				t.Errorf("accepted recipient has Err %v", res.Rcpts[0].Err)
			}
			for _, r := range res.Rcpts[1:] {
				var re *Error
				if !errors.As(r.Err, &re) || re.Reply.Code != 421 || !re.Temporary() {
					t.Errorf("recipient %s: %+v, want a temporary 421", r.Addr, r)
				}
			}
			if res.Data != nil {
				t.Errorf("Data = %v", res.Data)
			}
			if c.Usable() {
				t.Error("connection still usable after 421")
			}
			if _, err := c.Send(context.Background(), Envelope{}, rcptsTo("b@example.net"), strings.NewReader("")); !errors.Is(err, ErrUnusable) {
				t.Errorf("Send on a dead connection = %v, want ErrUnusable", err)
			}
			rec := srv.only()
			if rec.count("DATA") != 0 || len(rec.Messages) != 0 {
				t.Errorf("commands = %q", rec.lines())
			}
		})
	}
}

// TestDataRefused: a refused DATA fails the transaction for every accepted recipient,
// and RSET readies the connection.
func TestDataRefused(t *testing.T) {
	srv := (&fakeServer{Reply: func(line string, _ bool) string {
		if line == "DATA" {
			return "451 4.3.0 Try later\r\n"
		}
		return ""
	}}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{}))
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(testBody))
	var e *Error
	if !errors.As(err, &e) || e.Stage != "data" || !e.Temporary() || e.Reply.Code != 451 {
		t.Fatalf("Send error = %v", err)
	}
	if res.Rcpts[0].Err != nil || res.Data != nil {
		t.Errorf("result = %+v", res)
	}
	c.Quit(context.Background())
	if rec := srv.only(); rec.count("RSET") != 1 {
		t.Errorf("commands = %q", rec.lines())
	}
}

// TestEndOfDataRefused: the reply to the final dot is reported in Data and as the error.
func TestEndOfDataRefused(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			srv := &fakeServer{Reply: func(line string, _ bool) string {
				if line == "." {
					return "554 5.7.1 Spam\r\n"
				}
				return ""
			}}
			if chunking {
				srv.Ext = []string{"CHUNKING"}
			}
			srv.start(t)
			res, err := sendOne(t, srv, Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), testBody)
			var e *Error
			if !errors.As(err, &e) || e.Stage != "data" || !e.Permanent() || e.Reply.Enhanced != "5.7.1" {
				t.Fatalf("Send error = %v", err)
			}
			if res.Data == nil || res.Data.Code != 554 || res.Rcpts[0].Err != nil {
				t.Errorf("result = %+v", res)
			}
			srv.only()
		})
	}
}

// TestDropMidData: the server vanishes while the message is sent.
func TestDropMidData(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			srv := &fakeServer{DropAfter: 100}
			if chunking {
				srv.Ext = []string{"CHUNKING"}
			}
			srv.start(t)
			c := dialTest(t, srv.addr(), testOptions(t, Security{}))
			body := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 4000)
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(body))
			var e *Error
			if !errors.As(err, &e) || !e.Temporary() || e.Reply.Code != 0 {
				t.Fatalf("Send error = %v, want a temporary error without reply", err)
			}
			if res.Data != nil || res.Rcpts[0].Err != nil {
				t.Errorf("result = %+v", res)
			}
			if c.Usable() {
				t.Error("connection still usable")
			}
			if rec := srv.only(); len(rec.Messages) != 0 {
				t.Error("server stored a message")
			}
		})
	}
}

// TestDataOnTheWire checks the octets after 354: dot-stuffing, CRLF line ends whatever
// the input, a terminated last line, and nothing that could end the data early.
func TestDataOnTheWire(t *testing.T) {
	tests := []struct{ name, body, wire string }{
		{"empty", "", ".\r\n"},
		{"lone dot line", ".\r\n", "..\r\n.\r\n"},
		{"dots at line starts", "a\r\n.b\r\n..c\r\nd.\r\n", "a\r\n..b\r\n...c\r\nd.\r\n.\r\n"},
		{"dot as first octet", ".x\r\n", "..x\r\n.\r\n"},
		{"no final line end", "no newline", "no newline\r\n.\r\n"},
		{"bare LF", "bare\nlf\n.\nend\n", "bare\r\nlf\r\n..\r\nend\r\n.\r\n"},
		{"bare CR", "bare\rcr\r.\r", "bare\r\ncr\r\n..\r\n.\r\n"},
		{"smuggling attempt", "a\r\n\n.\n\r\nb\r.\rc", "a\r\n\r\n..\r\n\r\nb\r\n..\r\nc\r\n.\r\n"},
		{"blank lines", "x\r\n\r\n.\r\n", "x\r\n\r\n..\r\n.\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := (&fakeServer{}).start(t)
			if _, err := sendOne(t, srv, Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), tt.body); err != nil {
				t.Fatal(err)
			}
			rec := srv.only()
			if len(rec.Wire) != 1 || rec.Wire[0] != tt.wire {
				t.Errorf("wire = %q, want %q", rec.Wire, tt.wire)
			}
		})
	}
}

// TestBDAT: with CHUNKING the message goes in 64 KiB BDAT chunks, the last with LAST,
// unstuffed; no DATA command is sent.
func TestBDAT(t *testing.T) {
	line := ".dot-led line that DATA would have to stuff 0123456789\r\n"
	big := strings.Repeat(line, 150000/len(line)+1)
	tests := []struct {
		name   string
		body   string
		chunks []int
	}{
		{"three chunks", big, []int{chunkSize, chunkSize, len(big) - 2*chunkSize}},
		{"exactly one chunk", strings.Repeat("x", chunkSize-2) + "\r\n", []int{chunkSize}},
		{"small", testBody, []int{len(testBody)}},
		{"empty", "", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := (&fakeServer{Ext: []string{"CHUNKING", "PIPELINING", "8BITMIME"}, HoldBatch: 1}).start(t)
			res, err := sendOne(t, srv, Envelope{From: "a@example.org", Body: Body8BitMIME}, rcptsTo("b@example.net"), tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if res.Data == nil || res.Data.Code != 250 {
				t.Errorf("Data = %v", res.Data)
			}
			rec := srv.only()
			var want []string
			want = append(want, "EHLO client.example.test", "MAIL FROM:<a@example.org> BODY=8BITMIME", "RCPT TO:<b@example.net>")
			for i, n := range tt.chunks {
				l := fmt.Sprintf("BDAT %d", n)
				if i == len(tt.chunks)-1 {
					l += " LAST"
				}
				want = append(want, l)
			}
			want = append(want, "QUIT")
			if !slices.Equal(rec.lines(), want) {
				t.Errorf("commands:\n got %q\nwant %q", rec.lines(), want)
			}
			if !slices.Equal(rec.Chunks, tt.chunks) {
				t.Errorf("chunks = %v, want %v", rec.Chunks, tt.chunks)
			}
			if len(rec.Messages) != 1 || rec.Messages[0] != tt.body {
				t.Errorf("message differs from the body (%d messages)", len(rec.Messages))
			}
		})
	}
}

// TestBDATNormalizesLines: text sent with BDAT gets CRLF line ends too, but no stuffing.
func TestBDATNormalizesLines(t *testing.T) {
	srv := (&fakeServer{Ext: []string{"CHUNKING"}}).start(t)
	if _, err := sendOne(t, srv, Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), "a\n.\rb"); err != nil {
		t.Fatal(err)
	}
	if rec := srv.only(); len(rec.Messages) != 1 || rec.Messages[0] != "a\r\n.\r\nb\r\n" {
		t.Errorf("message = %q", rec.Messages)
	}
}

// TestBINARYMIME: a binary body goes through BDAT untouched.
func TestBINARYMIME(t *testing.T) {
	body := "bin\x00ary\nwith\rbare\r\nline ends\xff"
	srv := (&fakeServer{Ext: []string{"CHUNKING", "BINARYMIME"}}).start(t)
	if _, err := sendOne(t, srv, Envelope{From: "a@example.org", Body: BodyBinaryMIME}, rcptsTo("b@example.net"), body); err != nil {
		t.Fatal(err)
	}
	rec := srv.only()
	if rec.count("MAIL FROM:<a@example.org> BODY=BINARYMIME") != 1 {
		t.Errorf("commands = %q", rec.lines())
	}
	if len(rec.Messages) != 1 || rec.Messages[0] != body {
		t.Errorf("message = %q, want %q", rec.Messages, body)
	}
}

// TestBDATChunkRefused: a refused chunk ends the transaction; RSET keeps the session.
func TestBDATChunkRefused(t *testing.T) {
	n := 0
	srv := (&fakeServer{Ext: []string{"CHUNKING"}, Reply: func(line string, _ bool) string {
		if strings.HasPrefix(line, "BDAT") {
			if n++; n == 2 {
				return "552 5.3.4 Message too big\r\n"
			}
		}
		return ""
	}}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{}))
	body := strings.Repeat(strings.Repeat("x", 98)+"\r\n", 3*chunkSize/100)
	res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(body))
	var e *Error
	if !errors.As(err, &e) || e.Stage != "bdat" || !e.Permanent() || e.Reply.Enhanced != "5.3.4" {
		t.Fatalf("Send error = %v", err)
	}
	if res.Data != nil {
		t.Errorf("Data = %v", res.Data)
	}
	if !c.Usable() {
		t.Error("connection unusable")
	}
	c.Quit(context.Background())
	rec := srv.only()
	if want := []int{chunkSize, chunkSize}; !slices.Equal(rec.Chunks, want) {
		t.Errorf("chunks = %v, want %v", rec.Chunks, want)
	}
	if rec.count("RSET") != 1 || len(rec.Messages) != 0 {
		t.Errorf("commands = %q", rec.lines())
	}
}

// TestBodyReadError: a message that cannot be read completely is never ended: the
// connection is dropped so that the server discards what it got.
func TestBodyReadError(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			srv := &fakeServer{}
			if chunking {
				srv.Ext = []string{"CHUNKING"}
			}
			srv.start(t)
			c := dialTest(t, srv.addr(), testOptions(t, Security{}))
			failing := io.MultiReader(strings.NewReader("Subject: x\r\n\r\npart"), iotest.ErrReader(errors.New("disk on fire")))
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), failing)
			var e *Error
			if !errors.As(err, &e) || !e.Temporary() || !strings.Contains(err.Error(), "disk on fire") {
				t.Fatalf("Send error = %v", err)
			}
			if res.Data != nil || c.Usable() {
				t.Errorf("Data = %v, usable = %v", res.Data, c.Usable())
			}
			rec := srv.only()
			if len(rec.Messages) != 0 || len(rec.Wire) != 0 || rec.count("BDAT") != 0 {
				t.Errorf("server got an end of data: %q", rec.lines())
			}
		})
	}
}

// TestEightBitIn7BitBody: 8-bit octets in a body declared 7BIT are never sent to a server
// without 8BITMIME; the message is abandoned by dropping the connection.
func TestEightBitIn7BitBody(t *testing.T) {
	body := "Subject: caf\xc3\xa9\r\n\r\nx\r\n"
	t.Run("not offered", func(t *testing.T) {
		srv := (&fakeServer{}).start(t)
		c := dialTest(t, srv.addr(), testOptions(t, Security{}))
		_, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(body))
		var e *Error
		if !errors.As(err, &e) || !e.Permanent() || e.Reply.Enhanced != "5.6.3" || !errors.Is(err, errEightBit) {
			t.Fatalf("Send error = %v", err)
		}
		if c.Usable() {
			t.Error("connection still usable")
		}
		rec := srv.only()
		if len(rec.Messages) != 0 || len(rec.Wire) != 0 {
			t.Error("server got the message")
		}
	})
	t.Run("offered", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"8BITMIME"}}).start(t)
		if _, err := sendOne(t, srv, Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), body); err != nil {
			t.Fatal(err)
		}
		if rec := srv.only(); len(rec.Messages) != 1 {
			t.Error("message not delivered")
		}
	})
}

// TestHELOFallback: a 5xx to EHLO is answered with HELO, and no extension is used.
func TestHELOFallback(t *testing.T) {
	srv := (&fakeServer{Reply: func(line string, _ bool) string {
		if strings.HasPrefix(line, "EHLO") {
			return "502 5.5.1 What?\r\n"
		}
		return ""
	}}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{Mode: TLSOpportunistic}))
	if len(c.Extensions()) != 0 {
		t.Errorf("extensions = %v", c.Extensions())
	}
	if _, err := c.Send(context.Background(), Envelope{From: "a@example.org", Size: 10, RET: "FULL"}, rcptsTo("b@example.net"), strings.NewReader(testBody)); err != nil {
		t.Fatal(err)
	}
	c.Quit(context.Background())
	want := []string{"EHLO client.example.test", "HELO client.example.test", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>", "DATA", "QUIT"}
	if rec := srv.only(); !slices.Equal(rec.lines(), want) {
		t.Errorf("commands = %q, want %q", rec.lines(), want)
	}
}

// TestGreetingRefused: a 554 greeting is an error, and QUIT is still sent.
func TestGreetingRefused(t *testing.T) {
	srv := (&fakeServer{Greeting: "554-5.7.1 No\r\n554 5.7.1 Go away\r\n"}).start(t)
	_, err := Dial(context.Background(), "tcp", srv.addr(), testOptions(t, Security{}))
	var e *Error
	if !errors.As(err, &e) || e.Stage != "greeting" || e.Reply.Code != 554 || !e.Permanent() {
		t.Fatalf("Dial error = %v", err)
	}
	if rec := srv.only(); !slices.Equal(rec.lines(), []string{"QUIT"}) {
		t.Errorf("commands = %q", rec.lines())
	}
}

// TestReuse: one connection carries several messages; Reset sends RSET.
func TestReuse(t *testing.T) {
	srv := (&fakeServer{Ext: []string{"PIPELINING"}}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{}))
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Send(ctx, Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(fmt.Sprintf("n: %d\r\n", i))); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := c.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatalf("Quit: %v", err)
	}
	if c.Usable() {
		t.Error("usable after Quit")
	}
	rec := srv.only()
	if want := []string{"n: 0\r\n", "n: 1\r\n", "n: 2\r\n"}; !slices.Equal(rec.Messages, want) {
		t.Errorf("messages = %q", rec.Messages)
	}
	if rec.count("RSET") != 3 {
		t.Errorf("commands = %q", rec.lines())
	}
}

// TestGreetingTimeout: a server that never greets.
func TestGreetingTimeout(t *testing.T) {
	srv := (&fakeServer{Greeting: "none"}).start(t)
	opts := testOptions(t, Security{})
	opts.Timeouts.Greeting = 150 * time.Millisecond
	start := time.Now()
	_, err := Dial(context.Background(), "tcp", srv.addr(), opts)
	var e *Error
	if !errors.As(err, &e) || e.Stage != "greeting" || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Dial error = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	srv.sessions()
}

// TestFinalReplyTimeout: a server that never answers the end of data.
func TestFinalReplyTimeout(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			srv := &fakeServer{StallFinal: true}
			if chunking {
				srv.Ext = []string{"CHUNKING"}
			}
			srv.start(t)
			opts := testOptions(t, Security{})
			opts.Timeouts.DataTerm = 150 * time.Millisecond
			c := dialTest(t, srv.addr(), opts)
			start := time.Now()
			res, err := c.Send(context.Background(), Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(testBody))
			var e *Error
			if !errors.As(err, &e) || e.Stage != "data" || !e.Temporary() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Send error = %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if res.Data != nil || c.Usable() {
				t.Errorf("Data = %v, usable = %v", res.Data, c.Usable())
			}
			srv.sessions()
		})
	}
}

// TestContextCancel: cancelling the context ends a blocked Send at once.
func TestContextCancel(t *testing.T) {
	srv := (&fakeServer{StallFinal: true}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{}))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Send(ctx, Envelope{From: "a@example.org"}, rcptsTo("b@example.net"), strings.NewReader(testBody))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error = %v, want context.Canceled", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Stage != "data" {
		t.Errorf("error = %#v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	if c.Usable() {
		t.Error("usable after cancellation")
	}
	srv.sessions()
}

func TestInvalidArguments(t *testing.T) {
	srv := (&fakeServer{Ext: []string{"DSN"}}).start(t)
	c := dialTest(t, srv.addr(), testOptions(t, Security{}))
	ctx := context.Background()
	tests := []struct {
		name  string
		env   Envelope
		rcpts []Recipient
	}{
		{"no recipients", Envelope{}, nil},
		{"bad RET", Envelope{RET: "ALL"}, rcptsTo("b@example.net")},
		{"bad NOTIFY", Envelope{}, []Recipient{{Addr: "b@example.net", Notify: "NEVER,SUCCESS"}}},
		{"bad ORCPT", Envelope{}, []Recipient{{Addr: "b@example.net", ORCPT: "b@example.net"}}},
		{"bad body type", Envelope{Body: "7bit"}, rcptsTo("b@example.net")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Send(ctx, tt.env, tt.rcpts, strings.NewReader(""))
			var e *Error
			if err == nil || errors.As(err, &e) {
				t.Errorf("Send error = %v, want a plain argument error", err)
			}
			for _, r := range res.Rcpts {
				if r.Err == nil {
					t.Errorf("recipient %s has no error", r.Addr)
				}
			}
		})
	}
	if _, err := Dial(ctx, "tcp", srv.addr(), Options{Hostname: "bad name"}); err == nil {
		t.Error("Dial accepted an EHLO name with a space")
	}
	c.Close()
	if rec := srv.only(); rec.count("MAIL") != 0 {
		t.Errorf("commands = %q", rec.lines())
	}
}
