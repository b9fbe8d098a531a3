package lab

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// maxTap bounds what the tap keeps per domain.
const maxTap = 16 << 20

// relay sits in front of a receiver, at the address DNS gives for it: the attacker's
// position on the path. It forwards every connection to the receiver and, as the
// domain's attack switches say, records the bytes or strips STARTTLS.
type relay struct {
	domain  string // the destination domain the receiver serves
	backend string // the receiver's own address
	ln      net.Listener
	attacks *attacks
	tap     *tap
	wg      sync.WaitGroup
	conns   conns
}

func (rl *relay) serve() {
	for {
		c, err := rl.ln.Accept()
		if err != nil {
			return
		}
		if !rl.conns.add(c) {
			continue
		}
		rl.wg.Add(1)
		go func() {
			defer rl.wg.Done()
			defer rl.conns.remove(c)
			rl.forward(c)
		}()
	}
}

// close stops accepting, cuts open connections and waits for them to end.
func (rl *relay) close() {
	rl.ln.Close()
	rl.conns.closeAll()
	rl.wg.Wait()
}

func (rl *relay) forward(client net.Conn) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", rl.backend, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	deadline := time.Now().Add(time.Minute)
	_ = client.SetDeadline(deadline)
	_ = server.SetDeadline(deadline)

	at := rl.attacks.get(rl.domain) // fixed for the connection
	var rec io.Writer = io.Discard
	if at&(Passive|StripSTARTTLS) != 0 {
		rec = rl.tap.writer(rl.domain)
	}
	done := make(chan struct{}, 2)
	up := func() {
		if at&StripSTARTTLS != 0 {
			stripCommands(io.MultiWriter(server, rec), client)
		} else {
			io.Copy(io.MultiWriter(server, rec), client)
		}
		server.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}
	down := func() {
		if at&StripSTARTTLS != 0 {
			stripReplies(io.MultiWriter(client, rec), server)
		} else {
			io.Copy(io.MultiWriter(client, rec), server)
		}
		client.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}
	go up()
	go down()
	<-done
	<-done
}

// stripCommands copies client commands, turning STARTTLS into a verb the server
// does not know, so that a client ignoring the stripped EHLO still gets no TLS.
func stripCommands(dst io.Writer, src io.Reader) {
	br := bufio.NewReader(src)
	for {
		line, err := br.ReadString('\n')
		if strings.EqualFold(strings.TrimRight(line, "\r\n"), "STARTTLS") {
			line = "XXXXXXXX" + line[len("STARTTLS"):]
		}
		if _, werr := io.WriteString(dst, line); werr != nil || err != nil {
			return
		}
	}
}

// stripReplies copies server replies, removing STARTTLS from every multi-line reply
// (RFC 5321 §4.2.1 lines, RFC 3207 §4 keyword).
func stripReplies(dst io.Writer, src io.Reader) {
	br := bufio.NewReader(src)
	var reply []string
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			reply = append(reply, line)
		}
		if err != nil || isLastLine(line) {
			if _, werr := io.WriteString(dst, strings.Join(stripSTARTTLS(reply), "")); werr != nil {
				return
			}
			reply = reply[:0]
		}
		if err != nil {
			return
		}
	}
}

// isLastLine reports whether a reply line ends its reply: anything but "ddd-".
func isLastLine(line string) bool { return len(line) < 4 || line[3] != '-' }

// stripSTARTTLS removes the STARTTLS extension from one reply given as its lines
// (with line ends), and re-marks the last remaining line as the last (RFC 5321 §4.2.1).
func stripSTARTTLS(lines []string) []string {
	var out []string
	for _, l := range lines {
		if len(l) >= 4 && strings.EqualFold(strings.TrimSpace(l[4:]), "STARTTLS") {
			continue
		}
		out = append(out, l)
	}
	if len(out) == len(lines) || len(out) == 0 {
		return out
	}
	for i, l := range out {
		if len(l) < 4 {
			continue
		}
		sep := byte('-')
		if i == len(out)-1 {
			sep = ' '
		}
		out[i] = l[:3] + string(sep) + l[4:]
	}
	return out
}

// tap keeps what the relays recorded, by domain.
type tap struct {
	mu   sync.Mutex
	seen map[string]*bytes.Buffer
}

func (t *tap) writer(domain string) io.Writer { return tapWriter{t: t, domain: domain} }

func (t *tap) observed(domain string) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.seen[fqdn(domain)]; b != nil {
		return bytes.Clone(b.Bytes())
	}
	return nil
}

type tapWriter struct {
	t      *tap
	domain string
}

func (w tapWriter) Write(p []byte) (int, error) {
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	if w.t.seen == nil {
		w.t.seen = make(map[string]*bytes.Buffer)
	}
	b := w.t.seen[w.domain]
	if b == nil {
		b = new(bytes.Buffer)
		w.t.seen[w.domain] = b
	}
	if b.Len()+len(p) <= maxTap {
		b.Write(p)
	}
	return len(p), nil
}
