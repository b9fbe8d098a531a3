package smtpclient

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// AUTH PLAIN to a smarthost: only over TLS, only when offered, and a refusal is an error
// of the session.
func TestAuthPlain(t *testing.T) {
	cs := newCerts(t)
	good := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00relay-user\x00s3cret"))
	reply := func(line string, tls bool) string {
		if strings.HasPrefix(line, "AUTH ") {
			if line == good && tls {
				return "235 2.7.0 ok\r\n"
			}
			return "535 5.7.8 bad credentials\r\n"
		}
		return ""
	}
	t.Run("over TLS", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, ExtTLS: []string{"AUTH PLAIN LOGIN"}, Cert: cs.selfSigned, Reply: reply}).start(t)
		opts := testOptions(t, Security{Mode: TLSRequired})
		opts.Auth = &Credentials{User: "relay-user", Password: "s3cret"}
		c := dialTest(t, srv.addr(), opts)
		deliver(t, c)
		if rec := srv.only(); rec.count("AUTH PLAIN") != 1 || len(rec.Messages) != 1 {
			t.Errorf("commands %q", rec.lines())
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"STARTTLS"}, ExtTLS: []string{"AUTH PLAIN"}, Cert: cs.selfSigned, Reply: reply}).start(t)
		opts := testOptions(t, Security{Mode: TLSRequired})
		opts.Auth = &Credentials{User: "relay-user", Password: "wrong"}
		_, err := Dial(context.Background(), "tcp", srv.addr(), opts)
		var se *Error
		if !errors.As(err, &se) || se.Stage != "auth" || se.Reply.Code != 535 {
			t.Fatalf("Dial error %v", err)
		}
	})
	t.Run("never in plaintext", func(t *testing.T) {
		srv := (&fakeServer{Ext: []string{"AUTH PLAIN"}, Reply: reply}).start(t)
		opts := testOptions(t, Security{Mode: TLSOpportunistic})
		opts.Auth = &Credentials{User: "relay-user", Password: "s3cret"}
		if _, err := Dial(context.Background(), "tcp", srv.addr(), opts); err == nil {
			t.Fatal("credentials sent without TLS")
		}
		if rec := srv.only(); rec.count("AUTH") != 0 {
			t.Errorf("AUTH sent in plaintext: %q", rec.lines())
		}
	})
}
