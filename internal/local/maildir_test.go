package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var maildirName = regexp.MustCompile(`^(\d+)\.M(\d+)P(\d+)Q(\d+)R([0-9a-f]{16})\.([^/:,]+),S=(\d+)$`)

func newTestMaildir(t *testing.T) (*Maildir, string) {
	t.Helper()
	root := t.TempDir()
	md, err := NewMaildir(filepath.Join(root, "mail", "%d", "%u"), "mx1.example:25/a,b")
	if err != nil {
		t.Fatal(err)
	}
	return md, root
}

// newFiles returns the names of the files in a Maildir's new/ directory.
func newFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestMaildirDeliver(t *testing.T) {
	md, root := newTestMaildir(t)
	body := "Subject: test\r\nFrom: a@b.example\r\n\r\nline one\r\n.dot line\r\nbare cr\r here\nbare lf\r\n"
	wantBody := "Subject: test\nFrom: a@b.example\n\nline one\n.dot line\nbare cr\r here\nbare lf\n"
	targets := []Target{
		{Rcpt: "Alice+News@Example.org", Mailbox: Mailbox{Domain: "example.org", User: "alice", Separator: "+", Detail: "news"}},
		{Rcpt: "team@example.org", Mailbox: Mailbox{Domain: "example.org", User: "Bob"}},
	}
	results := md.Deliver(context.Background(), Envelope{From: "sender@remote.example"}, strings.NewReader(body), targets)
	if len(results) != 2 {
		t.Fatalf("got %d results", len(results))
	}
	for i, res := range results {
		if res.Status() != Delivered || res.Code != 250 || res.Enhanced != "2.0.0" || res.Err != nil {
			t.Fatalf("result %d = %+v (%s)", i, res, res.Reply())
		}
		if res.Rcpt != targets[i].Rcpt || res.Mailbox != targets[i].Mailbox.Address() {
			t.Errorf("result %d is for %q/%q", i, res.Rcpt, res.Mailbox)
		}
	}

	for i, c := range []struct{ user, deliveredTo string }{{"alice", "alice+news@example.org"}, {"bob", "Bob@example.org"}} {
		dir := filepath.Join(root, "mail", "example.org", c.user)
		names := newFiles(t, dir)
		if len(names) != 1 {
			t.Fatalf("%s/new has %q, want one file", dir, names)
		}
		m := maildirName.FindStringSubmatch(names[0])
		if m == nil {
			t.Fatalf("file name %q does not follow the Maildir form", names[0])
		}
		if want := `mx1.example\07225\057a\054b`; m[6] != want {
			t.Errorf("host part %q, want %q", m[6], want)
		}
		if m[3] != strconv.Itoa(os.Getpid()) {
			t.Errorf("pid part %q", m[3])
		}
		path := filepath.Join(dir, "new", names[0])
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := "Return-Path: <sender@remote.example>\nDelivered-To: " + c.deliveredTo + "\n" + wantBody
		if string(data) != want {
			t.Errorf("message %d:\n got %q\nwant %q", i, data, want)
		}
		if m[7] != strconv.Itoa(len(data)) {
			t.Errorf("S=%s, file has %d bytes", m[7], len(data))
		}
		if !strings.Contains(results[i].Text, names[0]) {
			t.Errorf("result text %q does not name the file", results[i].Text)
		}
		assertMode(t, path, 0o600)
		for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "new"), filepath.Join(dir, "cur"), filepath.Dir(dir)} {
			assertMode(t, d, fs.ModeDir|0o700)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
			t.Errorf("tmp/ not empty after delivery: %v", ents)
		}
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestMaildirNullSenderAndSecondDelivery(t *testing.T) {
	md, root := newTestMaildir(t)
	target := []Target{{Rcpt: "a@example.org", Mailbox: Mailbox{Domain: "example.org", User: "a"}}}
	for range 2 {
		res := md.Deliver(context.Background(), Envelope{}, strings.NewReader("x"), target)
		if res[0].Status() != Delivered {
			t.Fatalf("%+v", res[0])
		}
	}
	dir := filepath.Join(root, "mail", "example.org", "a")
	names := newFiles(t, dir)
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("new/ has %q, want two distinct files", names)
	}
	data, err := os.ReadFile(filepath.Join(dir, "new", names[0]))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Return-Path: <>\nDelivered-To: a@example.org\nx"; string(data) != want {
		t.Errorf("got %q, want %q", data, want)
	}
}

// TestMaildirUnsafeNames tries local parts and domains that would leave the root if they
// were pasted into the path, and checks that nothing at all is written anywhere.
func TestMaildirUnsafeNames(t *testing.T) {
	evil := []Mailbox{
		{Domain: "example.org", User: ".."},
		{Domain: "example.org", User: "."},
		{Domain: "example.org", User: "../../etc"},
		{Domain: "example.org", User: "../x"},
		{Domain: "example.org", User: "a/../../b"},
		{Domain: "example.org", User: "a/b"},
		{Domain: "example.org", User: "/etc/passwd"},
		{Domain: "example.org", User: "a\x00b"},
		{Domain: "example.org", User: "a\nb"},
		{Domain: "example.org", User: ".hidden"},
		{Domain: "example.org", User: ".Sent"},
		{Domain: "example.org", User: ""},
		{Domain: "example.org", User: `a\b`},
		{Domain: "example.org", User: "\xff\xfe"},
		{Domain: "example.org", User: strings.Repeat("a", 256)},
		{Domain: "..", User: "alice"},
		{Domain: "../..", User: "alice"},
		{Domain: "", User: "alice"},
		{Domain: "a/b", User: "alice"},
		{Domain: ".example.org", User: "alice"},
	}
	for _, tmpl := range []string{"mail/%d/%u", "mail/%u@%d", "mail/%d/users/%u/Maildir", "%d-%u"} {
		top := t.TempDir()
		md, err := NewMaildir(filepath.Join(top, "root", tmpl), "h")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range evil {
			t.Run(fmt.Sprintf("%s/%q@%q", tmpl, m.User, m.Domain), func(t *testing.T) {
				if p, err := md.Path(m); !errors.Is(err, ErrUnsafeMailbox) {
					t.Errorf("Path = %q, %v; want ErrUnsafeMailbox", p, err)
				}
				res := md.Deliver(context.Background(), Envelope{From: "x@y.example"}, strings.NewReader("evil"),
					[]Target{{Rcpt: "r@example.org", Mailbox: m}})
				if res[0].Status() != Bounced || res[0].Code != 550 || res[0].Enhanced != "5.1.3" || !errors.Is(res[0].Err, ErrUnsafeMailbox) {
					t.Errorf("result = %+v", res[0])
				}
			})
		}
		// Nothing at all may have been created.
		ents, err := os.ReadDir(top)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("template %s: created %v", tmpl, ents)
		}
	}
}

func TestMaildirRefusesLineBreaks(t *testing.T) {
	md, root := newTestMaildir(t)
	for _, env := range []Envelope{{From: "a@b\r\nX-Injected: 1"}, {From: "a@b\n"}} {
		res := md.Deliver(context.Background(), env, strings.NewReader("x"),
			[]Target{{Rcpt: "a@example.org", Mailbox: Mailbox{Domain: "example.org", User: "a"}}})
		if res[0].Status() != Bounced {
			t.Errorf("From %q: %+v", env.From, res[0])
		}
	}
	if _, err := os.Stat(filepath.Join(root, "mail")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("mail directory was created: %v", err)
	}
}

func TestNewMaildirErrors(t *testing.T) {
	for _, tmpl := range []string{"relative/%d/%u", "/var/mail/%x", "/var/mail/%", "/var/mail/%D"} {
		if _, err := NewMaildir(tmpl, "h"); err == nil {
			t.Errorf("NewMaildir(%q) succeeded", tmpl)
		}
	}
	md, err := NewMaildir("/var/mail/100%%/%d/%u", "h")
	if err != nil {
		t.Fatal(err)
	}
	p, err := md.Path(Mailbox{Domain: "example.org", User: "Alice"})
	if err != nil || p != "/var/mail/100%/example.org/alice" {
		t.Errorf("Path = %q, %v", p, err)
	}
	// Values are substituted once: a "%u" in a value stays as it is.
	p, err = md.Path(Mailbox{Domain: "example.org", User: "%d%u"})
	if err != nil || p != "/var/mail/100%/example.org/%d%u" {
		t.Errorf("Path = %q, %v", p, err)
	}
}

// TestMaildirConcurrent delivers to one new mailbox from many goroutines at once: the
// folder must be created once without errors and every message get its own file.
func TestMaildirConcurrent(t *testing.T) {
	md, root := newTestMaildir(t)
	const n = 40
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf("Subject: %d\n\nmessage %d\n", i, i)
			results[i] = md.Deliver(context.Background(), Envelope{From: "s@x.example"}, strings.NewReader(body),
				[]Target{{Rcpt: "c@example.org", Mailbox: Mailbox{Domain: "example.org", User: "c"}}})[0]
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.Status() != Delivered {
			t.Fatalf("delivery %d: %s", i, r.Reply())
		}
	}
	dir := filepath.Join(root, "mail", "example.org", "c")
	names := newFiles(t, dir)
	if len(names) != n {
		t.Fatalf("%d files in new/, want %d", len(names), n)
	}
	seen := make(map[string]bool)
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, "new", name))
		if err != nil {
			t.Fatal(err)
		}
		_, subject, _ := strings.Cut(string(data), "Subject: ")
		subject, _, _ = strings.Cut(subject, "\n")
		if seen[subject] {
			t.Errorf("message %s stored twice", subject)
		}
		seen[subject] = true
	}
}

// patternReaderAt is a message body of any size that exists only as a formula: numbered
// CRLF-terminated lines of fixed length.
type patternReaderAt struct {
	size int64
}

const patternLine = 64 // bytes per line, CRLF included

func (p patternReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= p.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && off < p.size {
		switch pos := off % patternLine; pos {
		case patternLine - 2:
			b[n] = '\r'
		case patternLine - 1:
			b[n] = '\n'
		default:
			b[n] = 'a' + byte((off/patternLine+pos)%26)
		}
		n++
		off++
	}
	if off >= p.size {
		return n, io.EOF
	}
	return n, nil
}

// TestMaildirStreams delivers a body far larger than what delivery may allocate, which
// shows that it is streamed rather than read into memory.
func TestMaildirStreams(t *testing.T) {
	md, root := newTestMaildir(t)
	const size = 32 << 20
	body := patternReaderAt{size: size}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := md.Deliver(context.Background(), Envelope{From: "s@x.example"}, body,
		[]Target{{Rcpt: "big@example.org", Mailbox: Mailbox{Domain: "example.org", User: "big"}}})
	runtime.ReadMemStats(&after)
	if res[0].Status() != Delivered {
		t.Fatal(res[0].Reply())
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("delivering %d bytes allocated %d bytes", size, alloc)
	}
	dir := filepath.Join(root, "mail", "example.org", "big")
	names := newFiles(t, dir)
	header := "Return-Path: <s@x.example>\nDelivered-To: big@example.org\n"
	wantSize := int64(len(header)) + size - size/patternLine // one CR less per line
	if !strings.HasSuffix(names[0], ",S="+strconv.FormatInt(wantSize, 10)) {
		t.Errorf("name %q, want size %d", names[0], wantSize)
	}
	f, err := os.Open(filepath.Join(dir, "new", names[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() != wantSize {
		t.Errorf("file has %d bytes, want %d", fi.Size(), wantSize)
	}
	// Spot-check a line in the middle.
	line := make([]byte, patternLine-1)
	const k = 1000
	if _, err := f.ReadAt(line, int64(len(header))+k*(patternLine-1)); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, patternLine)
	body.ReadAt(want, k*patternLine)
	if string(line) != string(want[:patternLine-2])+"\n" {
		t.Errorf("line %d = %q, want %q", k, line, want)
	}
}

// failingReaderAt fails after some bytes, like a spool file on a dying disk.
type failingReaderAt struct{ after int64 }

var errDisk = errors.New("input/output error")

func (f failingReaderAt) ReadAt(b []byte, off int64) (int, error) {
	if off >= f.after {
		return 0, errDisk
	}
	n := min(int64(len(b)), f.after-off)
	for i := range n {
		b[i] = 'x'
	}
	return int(n), nil
}

func TestMaildirBodyError(t *testing.T) {
	md, root := newTestMaildir(t)
	res := md.Deliver(context.Background(), Envelope{From: "s@x.example"}, failingReaderAt{after: 100 << 10},
		[]Target{{Rcpt: "a@example.org", Mailbox: Mailbox{Domain: "example.org", User: "a"}}})
	if res[0].Status() != Deferred || !errors.Is(res[0].Err, errDisk) {
		t.Fatalf("result = %+v", res[0])
	}
	dir := filepath.Join(root, "mail", "example.org", "a")
	for _, sub := range []string{"tmp", "new"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, sub)); len(ents) != 0 {
			t.Errorf("%s/ holds %v after a failed delivery", sub, ents)
		}
	}
}

func TestMaildirCanceled(t *testing.T) {
	md, _ := newTestMaildir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := md.Deliver(ctx, Envelope{}, strings.NewReader("x"),
		[]Target{{Rcpt: "a@example.org", Mailbox: Mailbox{Domain: "example.org", User: "a"}}})
	if res[0].Status() != Deferred || !errors.Is(res[0].Err, context.Canceled) {
		t.Fatalf("result = %+v", res[0])
	}
}

func TestLFWriter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\nb\n", "a\nb\n"},
		{"a\rb", "a\rb"},
		{"a\r", "a\r"},
		{"\r\r\n", "\r\n"},
		{"\r\n\r\n", "\n\n"},
		{"x\r\r\r\ny", "x\r\r\ny"},
	}
	for _, tt := range tests {
		// Whole, and one byte at a time so that CRLF is split across writes.
		for _, chunk := range []int{len(tt.in) + 1, 1, 2} {
			var buf bytes.Buffer
			w := &lfWriter{w: &buf}
			for in := tt.in; len(in) > 0; {
				n := min(chunk, len(in))
				w.Write([]byte(in[:n]))
				in = in[n:]
			}
			w.Close()
			if buf.String() != tt.want {
				t.Errorf("lfWriter(%q) in chunks of %d = %q, want %q", tt.in, chunk, buf.String(), tt.want)
			}
		}
	}
}

// FuzzMaildirPath checks that no mailbox name, however crafted, yields a path outside the
// Maildir root.
func FuzzMaildirPath(f *testing.F) {
	for _, s := range [][2]string{{"alice", "example.org"}, {"..", "example.org"}, {"a/../..", "x"}, {"a", ".."},
		{"%d", "%u"}, {".x", "y"}, {"a\x00", "b"}, {"..\\..", "c"}} {
		f.Add(s[0], s[1])
	}
	const root = "/srv/mail"
	md, err := NewMaildir(root+"/%d/%u", "h")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user, domain string) {
		p, err := md.Path(Mailbox{User: user, Domain: domain})
		if err != nil {
			return
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) || strings.Count(rel, "/") != 1 {
			t.Fatalf("Path(%q, %q) = %q, outside %s or at the wrong depth", user, domain, p, root)
		}
		if p != filepath.Clean(p) {
			t.Fatalf("Path(%q, %q) = %q is not clean", user, domain, p)
		}
	})
}
