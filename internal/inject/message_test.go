package inject

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/mail"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

const testHost = "mx.example.org"

// hdrs is a header block that makes ReadMessage add nothing.
const hdrs = "From: a@example.org\nDate: Mon, 02 Jan 2006 15:04:05 +0000\nMessage-ID: <1@example.org>\n"

func toCRLF(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// baseOpts is a command line with an explicit sender and one recipient, so results do
// not depend on the user running the tests.
func baseOpts() Options {
	return Options{
		Sender: "s@example.org", SenderSet: true,
		Recipients: []string{"r@example.org"},
		Hostname:   testHost,
	}
}

var (
	addedDate  = regexp.MustCompile(`(?m)^Date: ([^\r\n]*)\r\n`)
	addedMsgID = regexp.MustCompile(`(?m)^Message-ID: <([A-Z2-7]{26})@` + regexp.QuoteMeta(testHost) + `>\r\n`)
)

// mask replaces added Date and Message-ID values, after checking they are well formed,
// so that outputs can be compared exactly.
func mask(t *testing.T, out string) string {
	t.Helper()
	if m := addedDate.FindStringSubmatch(out); m != nil && m[1] != "Mon, 02 Jan 2006 15:04:05 +0000" {
		d, err := mail.ParseDate(m[1])
		if err != nil {
			t.Errorf("added Date %q does not parse: %v", m[1], err)
		} else if time.Since(d).Abs() > time.Hour {
			t.Errorf("added Date %q is not now", m[1])
		}
		out = addedDate.ReplaceAllString(out, "Date: DATE\r\n")
	}
	return addedMsgID.ReplaceAllString(out, "Message-ID: <ID@"+testHost+">\r\n")
}

func TestReadMessage(t *testing.T) {
	added := "Date: DATE\nMessage-ID: <ID@" + testHost + ">\n"
	tests := []struct {
		name   string
		in     string
		opts   func(*Options)
		out    string // LF in the table; compared as CRLF
		rcpts  []string
		body   string
		utf8   bool
		sender string // default s@example.org
	}{
		{name: "LF becomes CRLF",
			in:  hdrs + "Subject: hi\n\nline one\nline two\n",
			out: hdrs + "Subject: hi\n\nline one\nline two\n"},
		{name: "CRLF kept",
			in:  toCRLF(hdrs + "Subject: hi\n\nbody\n"),
			out: hdrs + "Subject: hi\n\nbody\n"},
		{name: "lone CR is a line end",
			in:  hdrs + "\na\rb\r\nc\r\rd\n",
			out: hdrs + "\na\nb\nc\n\nd\n"},
		{name: "last line gets a line end",
			in:  hdrs + "\nlast",
			out: hdrs + "\nlast\n"},
		{name: "dot line ends input",
			in:  hdrs + "\none\n.\ntwo\n",
			out: hdrs + "\none\n"},
		{name: "dot line with CRLF ends input",
			in:  toCRLF(hdrs+"\none\n") + ".\r\ntwo\r\n",
			out: hdrs + "\none\n"},
		{name: "dot line with lone CR ends input",
			in:  hdrs + "\none\n.\rtwo\n",
			out: hdrs + "\none\n"},
		{name: "dot at end of input ends it",
			in:  hdrs + "\none\n.",
			out: hdrs + "\none\n"},
		{name: "dot in header section ends input",
			in:  hdrs + "Subject: s\n.\n\nbody\n",
			out: hdrs + "Subject: s\n"},
		{name: "-i keeps dot lines",
			in:   hdrs + "\none\n.\ntwo\n.",
			opts: func(o *Options) { o.IgnoreDots = true },
			out:  hdrs + "\none\n.\ntwo\n.\n"},
		{name: "other dots untouched",
			in:  hdrs + "\n..\n.x\n. \nx.\n",
			out: hdrs + "\n..\n.x\n. \nx.\n"},
		{name: "Bcc removed with continuation lines",
			in:  "To: r@example.org\nBcc: secret@example.org,\n  other@example.org\n\tthird@example.org\nSubject: s\n" + hdrs + "\nbody\n",
			out: "To: r@example.org\nSubject: s\n" + hdrs + "\nbody\n"},
		{name: "Bcc removed in any case and obsolete syntax",
			in:  "BCC: x@example.org\nbcc : y@example.org\nResent-Bcc: z@example.org\n" + hdrs + "\n",
			out: hdrs + "\n"},
		{name: "empty Bcc removed",
			in:  hdrs + "Bcc:\n\nbody\n",
			out: hdrs + "\nbody\n"},
		{name: "Bcc-like text in body kept",
			in:  hdrs + "\nBcc: not a header\n",
			out: hdrs + "\nBcc: not a header\n"},
		{name: "-t takes To Cc Bcc and arguments",
			in: "To: one@example.org, Two <two@example.org>\nCc: three@example.org\n" +
				"Bcc: four@example.org\nbcc: five@example.org\n" + hdrs + "\nbody\n",
			opts:  func(o *Options) { o.ExtractRecipients = true },
			out:   "To: one@example.org, Two <two@example.org>\nCc: three@example.org\n" + hdrs + "\nbody\n",
			rcpts: []string{"r@example.org", "one@example.org", "two@example.org", "three@example.org", "four@example.org", "five@example.org"}},
		{name: "-t folded To",
			in:    "To: one@example.org,\n two@example.org\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To: one@example.org,\n two@example.org\n" + hdrs,
			rcpts: []string{"one@example.org", "two@example.org"}},
		{name: "-t groups and encoded names",
			in: "To: team: =?utf-8?q?J=C3=B6rg?= <j@example.org>, k@example.org;, undisclosed-recipients:;\n" +
				"Cc: =?x-unknown?b?Zm9v?= <l@example.org>\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To: team: =?utf-8?q?J=C3=B6rg?= <j@example.org>, k@example.org;, undisclosed-recipients:;\nCc: =?x-unknown?b?Zm9v?= <l@example.org>\n" + hdrs,
			rcpts: []string{"j@example.org", "k@example.org", "l@example.org"}},
		{name: "-t drops duplicates, domains case-insensitively",
			in:    "To: R@Example.ORG, x@example.org\nCc: x@EXAMPLE.org, X@example.org\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true },
			out:   "To: R@Example.ORG, x@example.org\nCc: x@EXAMPLE.org, X@example.org\n" + hdrs,
			rcpts: []string{"r@example.org", "R@Example.ORG", "x@example.org", "X@example.org"}},
		{name: "-t qualifies bare local parts",
			in:    "To: root, Joe <joe>\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = []string{"postmaster"} },
			out:   "To: root, Joe <joe>\n" + hdrs,
			rcpts: []string{"postmaster@" + testHost, "root@" + testHost, "joe@" + testHost}},
		{name: "-t reads past an unreadable display name",
			in:    "To: J\xf6rg M\xfcller <j@example.org>\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To: J\xf6rg M\xfcller <j@example.org>\n" + hdrs,
			rcpts: []string{"j@example.org"},
			body:  "8BITMIME"},
		{name: "-t uses Resent- fields when present",
			in: "To: old@example.org\nCc: old2@example.org\nResent-To: new@example.org\n" +
				"Resent-Cc: new2@example.org\nResent-Bcc: hidden@example.org\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To: old@example.org\nCc: old2@example.org\nResent-To: new@example.org\nResent-Cc: new2@example.org\n" + hdrs,
			rcpts: []string{"new@example.org", "new2@example.org", "hidden@example.org"}},
		{name: "-t ignores empty fields",
			in:    "To:\nCc: \nTo: a@example.org\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To:\nCc: \nTo: a@example.org\n" + hdrs,
			rcpts: []string{"a@example.org"}},
		{name: "without -t headers give no recipients",
			in:  "To: other@example.org\n" + hdrs,
			out: "To: other@example.org\n" + hdrs},
		{name: "missing headers added",
			in:  "Subject: s\n\nbody\n",
			out: "Subject: s\nFrom: s@example.org\n" + added + "\nbody\n"},
		{name: "From with full name",
			in:   "Subject: s\n\nbody\n",
			opts: func(o *Options) { o.FullName = "Cron Daemon" },
			out:  "Subject: s\nFrom: Cron Daemon <s@example.org>\n" + added + "\nbody\n"},
		{name: "From with full name needing quotes",
			in:   "Subject: s\n\nbody\n",
			opts: func(o *Options) { o.FullName = `Smith, J. "Doc"` },
			out:  "Subject: s\nFrom: \"Smith, J. \\\"Doc\\\"\" <s@example.org>\n" + added + "\nbody\n"},
		{name: "From with non-ASCII full name",
			in:   "Subject: s\n\nbody\n",
			opts: func(o *Options) { o.FullName = "Jörg" },
			out:  "Subject: s\nFrom: =?utf-8?q?J=C3=B6rg?= <s@example.org>\n" + added + "\nbody\n"},
		{name: "existing From kept, -F ignored",
			in:   "from: Someone <x@example.org>\nSubject: s\n",
			opts: func(o *Options) { o.FullName = "Ignored" },
			out:  "from: Someone <x@example.org>\nSubject: s\n" + added},
		{name: "bare sender qualified",
			in:     hdrs,
			opts:   func(o *Options) { o.Sender = "daemon" },
			out:    hdrs,
			sender: "daemon@" + testHost},
		{name: "mbox From line dropped",
			in:  "From s@example.org Mon Jan  2 15:04:05 2006\n" + hdrs + "\nbody\n",
			out: hdrs + "\nbody\n"},
		{name: "no header section",
			in:  "hello world\nsecond line\n",
			out: "From: s@example.org\n" + added + "\nhello world\nsecond line\n"},
		{name: "indented first line is body",
			in:  "  indented\n",
			out: "From: s@example.org\n" + added + "\n  indented\n"},
		{name: "body without blank line gets one",
			in:  hdrs + "this is body: really\n",
			out: hdrs + "\nthis is body: really\n"},
		{name: "empty input",
			in:  "",
			out: "From: s@example.org\n" + added},
		{name: "only a dot",
			in:  ".\n",
			out: "From: s@example.org\n" + added},
		{name: "8-bit body",
			in:   hdrs + "\nh\xc3\xa9llo\n",
			out:  hdrs + "\nh\xc3\xa9llo\n",
			body: "8BITMIME"},
		{name: "8-bit header",
			in:   hdrs + "Subject: caf\xc3\xa9\n",
			out:  hdrs + "Subject: caf\xc3\xa9\n",
			body: "8BITMIME"},
		{name: "-B 7BIT wins over detection",
			in:   hdrs + "\nh\xc3\xa9llo\n",
			opts: func(o *Options) { o.BodyType = "7BIT" },
			out:  hdrs + "\nh\xc3\xa9llo\n",
			body: "7BIT"},
		{name: "-B 8BITMIME on ASCII",
			in:   hdrs,
			opts: func(o *Options) { o.BodyType = "8BITMIME" },
			out:  hdrs,
			body: "8BITMIME"},
		{name: "8-bit only in removed Bcc is not 8-bit",
			in:  "Bcc: J\xc3\xb6rg <j@example.org>\n" + hdrs,
			out: hdrs},
		{name: "UTF-8 recipient needs SMTPUTF8",
			in:    hdrs,
			opts:  func(o *Options) { o.Recipients = []string{"jörg@bücher.example"} },
			out:   hdrs,
			rcpts: []string{"jörg@bücher.example"},
			utf8:  true},
		{name: "UTF-8 sender needs SMTPUTF8",
			in:     hdrs,
			opts:   func(o *Options) { o.Sender = "отправитель@example.org" },
			out:    hdrs,
			sender: "отправитель@example.org",
			utf8:   true},
		{name: "UTF-8 recipient from -t",
			in:    "To: José <josé@example.org>\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To: José <josé@example.org>\n" + hdrs,
			rcpts: []string{"josé@example.org"},
			body:  "8BITMIME",
			utf8:  true},
		{name: "quoted local part from -t",
			in:    "To: \"john doe\"@example.org\n" + hdrs,
			opts:  func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			out:   "To: \"john doe\"@example.org\n" + hdrs,
			rcpts: []string{`"john doe"@example.org`}},
		{name: "null sender",
			in:     hdrs,
			opts:   func(o *Options) { o.Sender = "" },
			out:    hdrs,
			sender: "<>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOpts()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			var out bytes.Buffer
			env, err := ReadMessage(strings.NewReader(tt.in), opts, &out)
			if err != nil {
				t.Fatalf("ReadMessage: %v", err)
			}
			if got, want := mask(t, out.String()), toCRLF(tt.out); got != want {
				t.Errorf("output\n got  %q\n want %q", got, want)
			}
			if env.Size != int64(out.Len()) {
				t.Errorf("Size = %d, want %d", env.Size, out.Len())
			}
			rcpts := tt.rcpts
			if rcpts == nil {
				rcpts = []string{"r@example.org"}
			}
			if !reflect.DeepEqual(env.Recipients, rcpts) {
				t.Errorf("Recipients = %q, want %q", env.Recipients, rcpts)
			}
			sender := tt.sender
			switch sender {
			case "":
				sender = "s@example.org"
			case "<>":
				sender = ""
			}
			if env.Sender != sender {
				t.Errorf("Sender = %q, want %q", env.Sender, sender)
			}
			if env.BodyType != tt.body {
				t.Errorf("BodyType = %q, want %q", env.BodyType, tt.body)
			}
			if env.SMTPUTF8 != tt.utf8 {
				t.Errorf("SMTPUTF8 = %v, want %v", env.SMTPUTF8, tt.utf8)
			}
		})
	}
}

// TestReadMessageEnvelopeOptions checks that the DSN options reach the envelope.
func TestReadMessageEnvelopeOptions(t *testing.T) {
	opts := baseOpts()
	opts.Notify, opts.Ret, opts.EnvID = "SUCCESS,FAILURE", "HDRS", "job+1"
	env, err := ReadMessage(strings.NewReader(hdrs), opts, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if env.Notify != "SUCCESS,FAILURE" || env.Ret != "HDRS" || env.EnvID != "job+1" {
		t.Errorf("envelope = %+v", env)
	}
}

// TestReadMessageDefaultSender checks the sender and From: used without -f and with
// the null sender: the invoking user at the configured host name.
func TestReadMessageDefaultSender(t *testing.T) {
	self, err := userMailbox(testHost)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(self, "@"+testHost) || len(self) == len("@"+testHost) {
		t.Fatalf("userMailbox = %q, want user@%s", self, testHost)
	}
	for _, tt := range []struct {
		name       string
		opts       Options
		wantSender string
	}{
		{"no -f", Options{Hostname: testHost, Recipients: []string{"r@example.org"}}, self},
		{"null sender", Options{Hostname: testHost, SenderSet: true, Recipients: []string{"r@example.org"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			env, err := ReadMessage(strings.NewReader("Subject: x\n"), tt.opts, &out)
			if err != nil {
				t.Fatal(err)
			}
			if env.Sender != tt.wantSender {
				t.Errorf("Sender = %q, want %q", env.Sender, tt.wantSender)
			}
			if !strings.Contains(out.String(), "\r\nFrom: "+self+"\r\n") {
				t.Errorf("output lacks From: %s:\n%s", self, out.String())
			}
		})
	}
}

func TestReadMessageErrors(t *testing.T) {
	bigHeader := "Subject: x\n" + strings.Repeat("X-Filler: "+strings.Repeat("y", 1000)+"\n", MaxHeaderBytes/1000+1)
	tests := []struct {
		name string
		in   string
		opts func(*Options)
		is   error  // errors.Is target, or nil
		msg  string // substring of the error
		code int
	}{
		{name: "header too large",
			in: bigHeader + "\nbody\n", is: ErrHeaderTooLarge, code: EX_DATAERR},
		{name: "one header field too large",
			in: "Subject: " + strings.Repeat("z", MaxHeaderBytes+1) + "\n\n", is: ErrHeaderTooLarge, code: EX_DATAERR},
		{name: "continuation too large",
			in: "Subject: x\n " + strings.Repeat("z", MaxHeaderBytes+1) + "\n\n", is: ErrHeaderTooLarge, code: EX_DATAERR},
		{name: "-t without recipients",
			in: "Subject: x\n\n", opts: func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			is: ErrNoRecipients, code: EX_DATAERR},
		{name: "-t with only empty group",
			in: "To: undisclosed-recipients:;\n\n", opts: func(o *Options) { o.ExtractRecipients = true; o.Recipients = nil },
			is: ErrNoRecipients, code: EX_DATAERR},
		{name: "-t with bad address",
			in: "To: a@@example.org\n\n", opts: func(o *Options) { o.ExtractRecipients = true },
			msg: `bad address in To header "a@@example.org"`, code: EX_DATAERR},
		{name: "bad host name",
			in: "", opts: func(o *Options) { o.Hostname = "bad host" },
			msg: "bad host name", code: EX_USAGE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOpts()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			_, err := ReadMessage(strings.NewReader(tt.in), opts, io.Discard)
			if err == nil {
				t.Fatal("ReadMessage succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if got := ExitCode(err); got != tt.code {
				t.Errorf("ExitCode = %d, want %d", got, tt.code)
			}
		})
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestReadMessageIOErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadMessage(&failingReader{data: []byte(hdrs + "\nbody"), err: boom}, baseOpts(), io.Discard)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "read message") || ExitCode(err) != EX_IOERR {
		t.Errorf("failing input: err = %v, exit %d", err, ExitCode(err))
	}
	_, err = ReadMessage(&failingReader{data: []byte("Subject: x\n"), err: boom}, baseOpts(), io.Discard)
	if !errors.Is(err, boom) || ExitCode(err) != EX_IOERR {
		t.Errorf("failing input in headers: err = %v, exit %d", err, ExitCode(err))
	}
	_, err = ReadMessage(strings.NewReader(hdrs+"\nbody\n"), baseOpts(), failingWriter{boom})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "write message copy") || ExitCode(err) != EX_IOERR {
		t.Errorf("failing output: err = %v, exit %d", err, ExitCode(err))
	}
}

// TestReadMessageLongBodyLine checks that a first line longer than the header limit
// that is not a header field streams as body instead of failing.
func TestReadMessageLongBodyLine(t *testing.T) {
	line := strings.Repeat("x", MaxHeaderBytes+12345)
	var out bytes.Buffer
	if _, err := ReadMessage(strings.NewReader(line), baseOpts(), &out); err != nil {
		t.Fatal(err)
	}
	want := toCRLF("From: s@example.org\nDate: DATE\nMessage-ID: <ID@"+testHost+">\n\n") + line + "\r\n"
	if got := mask(t, out.String()); got != want {
		t.Errorf("output differs: got %d bytes, want %d", len(got), len(want))
	}
}

// lineSource generates a deterministic LF text of n bytes without holding it, and
// hashes its CRLF form as it goes. It allocates nothing per read, so the allocation
// count of the test measures ReadMessage alone.
type lineSource struct {
	rng  *rand.Rand
	left int
	want io.Writer // receives the CRLF form of everything read
	line []byte    // the current line
	pos  int       // how much of line has been read
	out  []byte    // scratch for the CRLF form
}

func (s *lineSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if s.pos == len(s.line) {
		s.line, s.pos = s.line[:0], 0
		if s.rng.IntN(10) == 0 {
			s.line = append(s.line, '.') // dot lines, kept under -i
		} else {
			for range s.rng.IntN(200) {
				s.line = append(s.line, byte(' '+s.rng.IntN(95)))
			}
		}
		s.line = append(s.line, '\n')
	}
	k := min(len(p), len(s.line)-s.pos, s.left)
	copy(p, s.line[s.pos:s.pos+k])
	s.pos += k
	s.left -= k
	s.out = s.out[:0]
	for _, c := range p[:k] {
		if c == '\n' {
			s.out = append(s.out, '\r')
		}
		s.out = append(s.out, c)
	}
	if s.left == 0 && p[k-1] != '\n' {
		s.out = append(s.out, '\r', '\n') // ReadMessage ends the last line
	}
	s.want.Write(s.out)
	return k, nil
}

// TestReadMessageLarge streams a 20 MiB message and checks the output by hash and that
// the message was never held in memory.
func TestReadMessageLarge(t *testing.T) {
	const size = 20 << 20
	want := sha256.New()
	want.Write([]byte(toCRLF(hdrs + "\n")))
	src := &lineSource{rng: rand.New(rand.NewPCG(1, 2)), left: size, want: want, line: make([]byte, 0, 256), out: make([]byte, 0, 512)}
	opts := baseOpts()
	opts.IgnoreDots = true
	got := sha256.New()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	env, err := ReadMessage(io.MultiReader(strings.NewReader(hdrs+"\n"), src), opts, got)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("output hash differs from the CRLF form of the input")
	}
	if env.Size <= size {
		t.Errorf("Size = %d, want more than %d (CRLF adds bytes)", env.Size, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("ReadMessage allocated %d bytes for a %d-byte message; it should stream", alloc, size)
	}
}

// TestSubmitTempFileRemoved checks that Submit leaves no temporary file behind.
func TestSubmitTempFileRemoved(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	srv := startFake(t, fakeConfig{})
	id, err := Submit(t.Context(), srv.path, strings.NewReader("Subject: hi\n\nbody\n"), baseOpts())
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Error("no queue ID")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "mxward-sendmail-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	sess := srv.sessions()
	if len(sess) != 1 {
		t.Fatalf("%d sessions, want 1", len(sess))
	}
	data := sess[0].data
	if !strings.HasPrefix(data, "Subject: hi\r\nFrom: s@example.org\r\nDate: ") || !strings.HasSuffix(data, "\r\n\r\nbody\r\n") {
		t.Errorf("server received %q", data)
	}
}
