package local

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrUnsafeMailbox means a mailbox name cannot be turned into a path below the Maildir root,
// for instance because its local part is "..".
var ErrUnsafeMailbox = errors.New("local: unsafe mailbox name")

// Maildir delivers into Maildir folders (https://cr.yp.to/proto/maildir.html) whose paths
// come from a template.
//
// Messages are stored with LF line endings, as Maildir readers expect: CRLF from the wire
// is turned into LF while the body is copied. Every delivery writes tmp/, fsyncs, links the
// file into new/ and fsyncs new/, so a message that was reported delivered survives a
// crash.
//
// Names that could leave the template's directory ("..", "/", leading dots, control
// characters) are refused before any file system access. The check is lexical: the
// directories below the root are trusted not to hold symlinks planted by mailbox owners.
//
// A Maildir is safe for concurrent use.
type Maildir struct {
	template string
	prefix   string // the template's fixed leading directory, which no delivery leaves
	host     string // host name as used in file names
	pid      int
	counter  atomic.Uint64
}

// NewMaildir returns a Maildir whose folders are at template, an absolute path in which
// "%d" stands for the domain, "%u" for the user (local part, lowercased, without detail)
// and "%%" for "%". For example "/var/mail/%d/%u". hostname goes into file names; "" means
// the system's host name.
func NewMaildir(template, hostname string) (*Maildir, error) {
	if !filepath.IsAbs(template) {
		return nil, fmt.Errorf("maildir template %q: not an absolute path", template)
	}
	if _, err := expandTemplate(template, "d", "u"); err != nil {
		return nil, fmt.Errorf("maildir template %q: %w", template, err)
	}
	prefix := template
	if i := strings.IndexByte(template, '%'); i >= 0 {
		prefix = template[:i]
	}
	// The fixed part ends at the last complete directory before the first escape.
	if !strings.HasSuffix(prefix, "/") {
		prefix = filepath.Dir(prefix)
	}
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		hostname = h
	}
	return &Maildir{
		template: template,
		prefix:   filepath.Clean(prefix),
		host:     maildirHost(hostname),
		pid:      os.Getpid(),
	}, nil
}

// Path returns the Maildir folder for a mailbox, or an error wrapping ErrUnsafeMailbox if
// the mailbox's names cannot safely be part of a path.
func (md *Maildir) Path(m Mailbox) (string, error) {
	// Checked before and after lowercasing: ToLower turns invalid UTF-8 into U+FFFD.
	user := strings.ToLower(m.User)
	if err := cmp.Or(safeComponent(m.User), safeComponent(user)); err != nil {
		return "", fmt.Errorf("%w: user %q: %v", ErrUnsafeMailbox, m.User, err)
	}
	if err := safeComponent(m.Domain); err != nil {
		return "", fmt.Errorf("%w: domain %q: %v", ErrUnsafeMailbox, m.Domain, err)
	}
	p, err := expandTemplate(md.template, m.Domain, user)
	if err != nil {
		return "", err
	}
	p = filepath.Clean(p)
	// Belt and braces: the component checks already make this impossible.
	if rel, err := filepath.Rel(md.prefix, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: %q is outside %q", ErrUnsafeMailbox, p, md.prefix)
	}
	return p, nil
}

// Deliver stores the message read from body in each target's Maildir, with Return-Path and
// Delivered-To headers for that target in front. body is read from offset 0 once per
// target and never held in memory as a whole. There is one Result per target, in order.
func (md *Maildir) Deliver(ctx context.Context, env Envelope, body io.ReaderAt, targets []Target) []Result {
	results := make([]Result, len(targets))
	for i, t := range targets {
		results[i] = md.deliverOne(ctx, env, body, t)
	}
	return results
}

func (md *Maildir) deliverOne(ctx context.Context, env Envelope, body io.ReaderAt, t Target) Result {
	res := Result{Rcpt: t.Rcpt, Mailbox: t.Mailbox.Address()}
	if err := ctx.Err(); err != nil {
		return fail(res, 451, "4.3.0", true, err)
	}
	dir, err := md.Path(t.Mailbox)
	if err != nil {
		return fail(res, 550, "5.1.3", false, err)
	}
	// The mailbox's names passed Path, which refuses control characters; the sender goes
	// into a header too and must not be able to add lines to it.
	if hasLineBreak(env.From) {
		return fail(res, 550, "5.1.7", false, fmt.Errorf("line break in sender %q", env.From))
	}
	name, size, err := md.store(ctx, dir, env.From, res.Mailbox, body)
	if err != nil {
		code, enh := 451, "4.3.0"
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			code, enh = 452, "4.2.2"
		}
		return fail(res, code, enh, true, fmt.Errorf("deliver to maildir %s: %w", dir, err))
	}
	res.Code, res.Enhanced = 250, "2.0.0"
	res.Text = fmt.Sprintf("saved as %s (%d bytes)", name, size)
	return res
}

func fail(res Result, code int, enhanced string, temporary bool, err error) Result {
	res.Code, res.Enhanced, res.Temporary, res.Err = code, enhanced, temporary, err
	return res
}

// store writes one message into the Maildir at dir and returns its file name in new/.
func (md *Maildir) store(ctx context.Context, dir, from, rcpt string, body io.ReaderAt) (string, int64, error) {
	if err := ensureMaildir(dir); err != nil {
		return "", 0, err
	}
	base, err := md.uniqueName()
	if err != nil {
		return "", 0, err
	}
	tmpPath := filepath.Join(dir, "tmp", base)
	// O_EXCL: never follow a planted symlink, never reuse a file.
	f, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("create tmp file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmpPath)
		}
	}()

	w := bufio.NewWriterSize(f, 64<<10)
	if from == "" {
		fmt.Fprintf(w, "Return-Path: <>\n")
	} else {
		fmt.Fprintf(w, "Return-Path: <%s>\n", from)
	}
	fmt.Fprintf(w, "Delivered-To: %s\n", rcpt)
	lf := &lfWriter{w: w}
	src := io.NewSectionReader(body, 0, math.MaxInt64)
	if _, err := io.Copy(lf, ctxReader{ctx, src}); err != nil {
		return "", 0, fmt.Errorf("copy body: %w", err)
	}
	if err := lf.Close(); err != nil {
		return "", 0, fmt.Errorf("write tmp file: %w", err)
	}
	if err := w.Flush(); err != nil {
		return "", 0, fmt.Errorf("write tmp file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("fsync tmp file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("stat tmp file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("close tmp file: %w", err)
	}
	size := fi.Size()
	name := base + ",S=" + strconv.FormatInt(size, 10)
	newPath := filepath.Join(dir, "new", name)
	// link(2) rather than rename(2): it refuses to replace an existing file.
	if err := os.Link(tmpPath, newPath); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", 0, fmt.Errorf("link into new/: %w", err)
		}
		// Some file systems have no hard links; the name is unique, so rename is safe.
		if err := os.Rename(tmpPath, newPath); err != nil {
			return "", 0, fmt.Errorf("move into new/: %w", err)
		}
	} else {
		os.Remove(tmpPath)
	}
	ok = true
	if err := syncDir(filepath.Join(dir, "new")); err != nil {
		// The message is in new/ but may not survive a crash: not yet delivered. A retry
		// may store a duplicate, which is better than a loss.
		os.Remove(newPath)
		return "", 0, err
	}
	return name, size, nil
}

// ensureMaildir creates dir with tmp/, new/ and cur/ if they are missing, making every
// directory it creates durable.
func ensureMaildir(dir string) error {
	if fi, err := os.Stat(filepath.Join(dir, "new")); err == nil && fi.IsDir() {
		if fi, err := os.Stat(filepath.Join(dir, "tmp")); err == nil && fi.IsDir() {
			return nil
		}
	}
	created, err := mkdirAll(dir)
	if err != nil {
		return err
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		err := os.Mkdir(filepath.Join(dir, sub), 0o700)
		if err == nil {
			created = append(created, filepath.Join(dir, sub))
		} else if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create maildir: %w", err)
		}
	}
	for _, c := range created {
		if err := syncDir(filepath.Dir(c)); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll is os.MkdirAll with mode 0700 that also returns the directories it created.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("create maildir: %w", err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create maildir: %w", err)
		}
		if err == nil {
			created = append(created, missing[i])
		}
	}
	return created, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// uniqueName returns a file name per the Maildir specification's modern form:
// "<seconds>.M<microseconds>P<pid>Q<counter>R<random>.<host>". The random part keeps
// names unique across processes that share a pid namespace badly, such as containers.
func (md *Maildir) uniqueName() (string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("random file name: %w", err)
	}
	now := time.Now()
	q := md.counter.Add(1)
	return fmt.Sprintf("%d.M%dP%dQ%dR%s.%s", now.Unix(), now.Nanosecond()/1000, md.pid, q,
		hex.EncodeToString(rnd[:]), md.host), nil
}

// maildirHost encodes the characters that have meaning in Maildir file names, as the
// specification asks ("/" and ":"), and "," which starts Dovecot's size fields.
func maildirHost(h string) string {
	r := strings.NewReplacer("/", `\057`, ":", `\072`, ",", `\054`)
	return r.Replace(h)
}

// expandTemplate replaces %d, %u and %% in t in one pass, so that a value containing "%u"
// is never expanded again.
func expandTemplate(t, domain, user string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] != '%' {
			b.WriteByte(t[i])
			continue
		}
		if i+1 == len(t) {
			return "", errors.New("template ends in %")
		}
		i++
		switch t[i] {
		case 'd':
			b.WriteString(domain)
		case 'u':
			b.WriteString(user)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("unknown escape %%%c", t[i])
		}
	}
	return b.String(), nil
}

// safeComponent rejects names that could take a path out of its directory or are
// otherwise unfit as one file name: empty, ".", "..", leading dot (which would also make
// Maildir++ folders of it), slashes, NUL and other control characters, invalid UTF-8.
func safeComponent(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case s[0] == '.':
		return errors.New("leading dot")
	case strings.ContainsAny(s, "/\\"):
		return errors.New("path separator")
	case hasControl(s):
		return errors.New("control character")
	case len(s) > 255:
		return errors.New("too long")
	}
	return nil
}

func hasLineBreak(s string) bool {
	return strings.ContainsAny(s, "\r\n\x00")
}

// lfWriter turns CRLF into LF on the way through. A CR at the end of one Write is held back
// until the next byte shows whether it ends a line.
type lfWriter struct {
	w       io.Writer
	pending bool // a CR is held back
}

func (l *lfWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.pending && len(p) > 0 {
		l.pending = false
		if p[0] != '\n' {
			if _, err := l.w.Write([]byte{'\r'}); err != nil {
				return 0, err
			}
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			if _, err := l.w.Write(p); err != nil {
				return 0, err
			}
			break
		}
		if _, err := l.w.Write(p[:i]); err != nil {
			return 0, err
		}
		switch {
		case i+1 == len(p):
			l.pending = true
			p = nil
		case p[i+1] == '\n':
			p = p[i+1:] // drop the CR, keep the LF
		default:
			if _, err := l.w.Write(p[i : i+1]); err != nil {
				return 0, err
			}
			p = p[i+1:]
		}
	}
	return n, nil
}

// Close writes out a CR that was held back at the very end.
func (l *lfWriter) Close() error {
	if l.pending {
		l.pending = false
		_, err := l.w.Write([]byte{'\r'})
		return err
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
