package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sendOne delivers one message over a fresh SMTP connection and reports whether the server
// acknowledged it with 250 after the data.
func sendOne(addr, rcpt, body string) (bool, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	read := func(want string) error {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if len(l) < 4 || l[3] != '-' {
				if !strings.HasPrefix(l, want) {
					return fmt.Errorf("got %q, want %s", l, want)
				}
				return nil
			}
		}
	}
	steps := []struct{ send, want string }{
		{"", "220"}, {"EHLO load.test\r\n", "250"}, {"MAIL FROM:<load@remote.test>\r\n", "250"},
		{"RCPT TO:<" + rcpt + ">\r\n", "250"}, {"DATA\r\n", "354"}, {body + ".\r\n", "250"},
	}
	for _, s := range steps {
		if s.send != "" {
			if _, err := conn.Write([]byte(s.send)); err != nil {
				return false, err
			}
		}
		if err := read(s.want); err != nil {
			return false, err
		}
	}
	conn.Write([]byte("QUIT\r\n"))
	return true, nil
}

var tokenRE = regexp.MustCompile(`X-Token: ([0-9a-f]+)\s+X-Sum: ([0-9a-f]+)`)

// The never-lose-mail invariant under kill -9: clients send concurrently while the server is
// killed at random moments, many times. After a final restart every message that got a 250
// must reach its mailbox intact (a duplicate is acceptable, a loss or corruption is not).
func TestCrashKill9UnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	rounds := 8
	if s := os.Getenv("MXWARD_CRASH_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	in := startInstance(t, "")
	var mu sync.Mutex
	acked := map[string]string{} // token -> checksum of the payload

	for round := 0; round < rounds; round++ {
		if round > 0 {
			in.start()
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < 8; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var tb [8]byte
					rand.Read(tb[:])
					token := hex.EncodeToString(tb[:])
					payload := strings.Repeat(token+" lorem ipsum dolor sit amet\r\n", 40)
					sum := sha256.Sum256([]byte(payload))
					body := "Subject: crash\r\nX-Token: " + token + "\r\nX-Sum: " + hex.EncodeToString(sum[:]) + "\r\n\r\n" + payload
					rcpt := []string{"alice@example.test", "bob@example.test"}[tb[0]%2]
					ok, err := sendOne(in.addr("inbound"), rcpt, body)
					if ok {
						mu.Lock()
						acked[token] = hex.EncodeToString(sum[:])
						mu.Unlock()
					}
					if err != nil {
						time.Sleep(5 * time.Millisecond)
					}
				}
			}()
		}
		n, _ := rand.Int(rand.Reader, big.NewInt(700))
		time.Sleep(150*time.Millisecond + time.Duration(n.Int64())*time.Millisecond)
		in.cmd.Process.Signal(syscall.SIGKILL) // our own child, by pid
		<-in.exited
		close(stop)
		wg.Wait()
	}
	in.start()
	t.Logf("%d rounds of kill -9, %d messages acknowledged", rounds, len(acked))
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged: the load did not run")
	}

	// Wait until local delivery has drained the queue, then find every acknowledged token.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := in.mxward("", "queue", "list", "--json")
		if err == nil && strings.TrimSpace(out) == "[]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained after restart: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	found := map[string]int{}
	for _, user := range []string{"alice", "bob"} {
		dir := filepath.Join(in.dir, "data", "mail", "example.test", user, "new")
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			msg := string(b)
			m := tokenRE.FindStringSubmatch(msg)
			if m == nil {
				t.Errorf("delivered message without token: %s", e.Name())
				continue
			}
			_, body, _ := strings.Cut(msg, "\n\n")
			// Maildir stores LF line ends; the checksum was over the CRLF payload.
			sum := sha256.Sum256([]byte(strings.ReplaceAll(body, "\n", "\r\n")))
			if hex.EncodeToString(sum[:]) != m[2] {
				t.Errorf("message %s is corrupted", m[1])
			}
			found[m[1]]++
		}
	}
	dups := 0
	for token := range acked {
		switch found[token] {
		case 0:
			t.Errorf("acknowledged message %s was lost", token)
		case 1:
		default:
			dups++
		}
	}
	t.Logf("%d delivered, %d acknowledged, %d delivered more than once", len(found), len(acked), dups)
}
