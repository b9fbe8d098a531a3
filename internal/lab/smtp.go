package lab

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// maxMessage bounds one message a receiver accepts.
const maxMessage = 10 << 20

// Message is one message a receiver accepted, with the TLS state it came over.
type Message struct {
	Host       string   // the receiver's name, fully qualified
	From       string   // reverse path, without the angle brackets
	To         []string // forward paths
	Data       []byte   // the content, dot-unstuffed, CRLF line ends
	TLS        bool     // STARTTLS was completed before the transaction
	TLSVersion uint16
	ServerName string // SNI the sender asked for, if any
}

// receiver is a minimal SMTP server (RFC 5321) with STARTTLS (RFC 3207) and
// PIPELINING (RFC 2920), recording what it accepts.
type receiver struct {
	host string
	cert *tls.Certificate // nil: STARTTLS not offered
	ln   net.Listener

	mu    sync.Mutex
	msgs  []Message
	wg    sync.WaitGroup
	conns conns
}

func (r *receiver) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.conns.add(c) {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.conns.remove(c)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			r.session(c)
		}()
	}
}

// close stops accepting, closes open sessions and waits for them to end.
func (r *receiver) close() {
	if r.ln != nil {
		r.ln.Close()
	}
	r.conns.closeAll()
	r.wg.Wait()
}

func (r *receiver) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

// command is one parsed SMTP command line.
type command struct {
	verb string // upper case
	arg  string
}

// parseCommand splits a command line (without CRLF) into verb and argument.
func parseCommand(line string) command {
	verb, arg, _ := strings.Cut(line, " ")
	return command{verb: strings.ToUpper(verb), arg: strings.TrimSpace(arg)}
}

// parsePath extracts the address from "FROM:<a@b> PARAMS" or "TO:<a@b>" given the
// prefix, as RFC 5321 §4.1.2 writes them.
func parsePath(arg, prefix string) (string, error) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", fmt.Errorf("expected %s", prefix)
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", errors.New("path not in angle brackets")
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", errors.New("unterminated path")
	}
	return rest[1:end], nil
}

func (r *receiver) session(c net.Conn) {
	br, w := bufio.NewReader(c), bufio.NewWriter(c)
	reply := func(s string) bool {
		w.WriteString(s + "\r\n")
		// Replies are flushed only when no pipelined command waits (RFC 2920 §3.2).
		if br.Buffered() == 0 {
			return w.Flush() == nil
		}
		return true
	}
	var (
		tlsState *tls.ConnectionState
		from     string
		to       []string
		inTx     bool
	)
	reply("220 " + strings.TrimSuffix(r.host, ".") + " ESMTP mxward lab")
	for {
		line, err := readLine(br)
		if err != nil {
			return
		}
		cmd := parseCommand(line)
		switch cmd.verb {
		case "EHLO", "HELO":
			inTx, from, to = false, "", nil
			if cmd.verb == "HELO" {
				reply("250 " + strings.TrimSuffix(r.host, "."))
				continue
			}
			lines := []string{strings.TrimSuffix(r.host, "."), "PIPELINING", "8BITMIME", fmt.Sprintf("SIZE %d", maxMessage)}
			if r.cert != nil && tlsState == nil {
				lines = append(lines, "STARTTLS")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				w.WriteString("250" + sep + l + "\r\n")
			}
			if w.Flush() != nil {
				return
			}
		case "STARTTLS":
			if r.cert == nil || tlsState != nil {
				reply("502 5.5.1 STARTTLS not available")
				continue
			}
			if br.Buffered() > 0 {
				// Commands pipelined after STARTTLS could be injected in clear
				// (RFC 3207 §4.2 forbids pipelining it); refuse rather than obey.
				reply("554 5.5.0 commands pipelined after STARTTLS")
				return
			}
			if !reply("220 2.0.0 ready to start TLS") || w.Flush() != nil {
				return
			}
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*r.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			st := tc.ConnectionState()
			tlsState = &st
			br, w = bufio.NewReader(tc), bufio.NewWriter(tc)
			inTx, from, to = false, "", nil // RFC 3207 §4.2: forget what came before
		case "MAIL":
			p, err := parsePath(cmd.arg, "FROM:")
			if err != nil {
				reply("501 5.5.4 " + err.Error())
				continue
			}
			inTx, from, to = true, p, nil
			reply("250 2.1.0 ok")
		case "RCPT":
			if !inTx {
				reply("503 5.5.1 MAIL first")
				continue
			}
			p, err := parsePath(cmd.arg, "TO:")
			if err != nil {
				reply("501 5.5.4 " + err.Error())
				continue
			}
			to = append(to, p)
			reply("250 2.1.5 ok")
		case "DATA":
			if len(to) == 0 {
				reply("503 5.5.1 RCPT first")
				continue
			}
			if !reply("354 end with <CRLF>.<CRLF>") || w.Flush() != nil {
				return
			}
			data, err := readData(br)
			if errors.Is(err, errTooBig) {
				reply("552 5.3.4 message too big")
				inTx, from, to = false, "", nil
				continue
			}
			if err != nil {
				return
			}
			m := Message{Host: r.host, From: from, To: to, Data: data}
			if tlsState != nil {
				m.TLS, m.TLSVersion, m.ServerName = true, tlsState.Version, tlsState.ServerName
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			r.mu.Unlock()
			inTx, from, to = false, "", nil
			reply("250 2.0.0 accepted")
		case "RSET":
			inTx, from, to = false, "", nil
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			w.Flush()
			return
		default:
			reply("500 5.5.2 command not recognized")
		}
	}
}

var errTooBig = errors.New("message too big")

// readLine reads one line of at most 1000 octets (RFC 5321 §4.5.3.1.6) without its
// line end.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > 4096 {
			return "", errors.New("line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// readData reads a message up to the lone dot and removes dot-stuffing
// (RFC 5321 §4.5.2). Past maxMessage it reads on to the end and reports errTooBig.
func readData(br *bufio.Reader) ([]byte, error) {
	var buf bytes.Buffer
	tooBig := false
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 1 && line[0] == '.' {
			break
		}
		if len(line) > 0 && line[0] == '.' {
			line = line[1:]
		}
		if buf.Len()+len(line) > maxMessage {
			tooBig = true
			continue
		}
		buf.Write(line)
		buf.WriteString("\r\n")
	}
	if tooBig {
		return nil, errTooBig
	}
	return buf.Bytes(), nil
}
