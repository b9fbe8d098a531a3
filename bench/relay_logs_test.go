package bench

import (
	"strings"
	"testing"
)

const testMxwardLog = `{"time":"2026-11-28T16:00:00Z","level":"INFO","msg":"ready"}
{"time":"2026-11-28T16:00:01Z","level":"INFO","msg":"delivery","component":"delivery","queue_id":"a","rcpt":"r@remote.test","domain":"remote.test","mx":"","ip":"127.0.0.1","result":"delivered","policy":"opportunistic","tls":"untrusted","tls_version":"TLSv1.3","cipher":"TLS_AES_128_GCM_SHA256","auth":"none"}
{"time":"2026-11-28T16:00:01Z","level":"INFO","msg":"delivery","component":"delivery","queue_id":"b","mx":"","ip":"127.0.0.1","result":"delivered","tls":"untrusted","tls_version":"TLSv1.3","cipher":"TLS_AES_128_GCM_SHA256"}
{"time":"2026-11-28T16:00:02Z","level":"WARN","msg":"delivery","component":"delivery","queue_id":"c","mx":"","ip":"127.0.0.1","result":"deferred","tls":"none","tls_version":"","cipher":"","reason":"connect_failed"}
{"time":"2026-11-28T16:00:02Z","level":"INFO","msg":"delivery","component":"delivery","queue_id":"d","ip":"192.0.2.1","mx":"mx.example","result":"delivered","tls":"untrusted","tls_version":"TLSv1.2","cipher":"X"}
{"time":"2026-11-28T16:00:03Z","level":"INFO","msg":"delivery","component":"delivery","queue_id":"e","rcpt":"u@local.test","result":"delivered","transport":"maildir"}
goroutine 1 [running]:

{"time":"2026-11-28T16:00:04Z","level":"INFO","msg":"queued","queue_id":"f","tls":"none"}
`

func TestSummariseMxwardLog(t *testing.T) {
	l, err := summariseMxwardLog(strings.NewReader(testMxwardLog))
	if err != nil {
		t.Fatal(err)
	}
	if l.records != 8 || l.levels["INFO"] != 6 || l.levels["WARN"] != 1 || l.levels["?"] != 1 {
		t.Errorf("records %d, levels %v", l.records, l.levels)
	}
	if l.deliveries != 4 || l.results["delivered"] != 3 || l.results["deferred"] != 1 {
		t.Errorf("deliveries %d, results %v", l.deliveries, l.results)
	}
	if l.tls["untrusted TLSv1.3 TLS_AES_128_GCM_SHA256"] != 2 || l.tls["none"] != 1 {
		t.Errorf("tls %v", l.tls)
	}
	if len(l.offLoopback) != 1 || !strings.Contains(l.offLoopback[0], `"queue_id":"d"`) {
		t.Errorf("offLoopback %q", l.offLoopback)
	}
	if len(l.notEncrypted) != 1 || !strings.Contains(l.notEncrypted[0], `"queue_id":"c"`) {
		t.Errorf("notEncrypted %q", l.notEncrypted)
	}
}

func FuzzSummariseMxwardLog(f *testing.F) {
	f.Add(testMxwardLog)
	f.Add(`{"msg":"delivery","tls":"untrusted"}` + "\n" + `{"msg":1}`)
	f.Add("\x00\n{")
	f.Fuzz(func(t *testing.T, log string) {
		l, err := summariseMxwardLog(strings.NewReader(log))
		if err != nil {
			return // a line over the scanner's limit
		}
		n := 0
		for _, v := range l.levels {
			n += v
		}
		if n != l.records || l.deliveries > l.records {
			t.Errorf("records %d, levels %v, deliveries %d", l.records, l.levels, l.deliveries)
		}
		if len(l.offLoopback) > maxLogExamples || len(l.notEncrypted) > maxLogExamples {
			t.Errorf("more than %d examples kept", maxLogExamples)
		}
	})
}

const testPostfixLog = `Nov 28 16:00:00 postfix.bench.test postfix/smtpd[10]: connect from localhost[127.0.0.1]
Nov 28 16:00:00 postfix.bench.test postfix/qmgr[11]: 4A1: from=<s@c.test>, size=1300, nrcpt=1 (queue active)
Nov 28 16:00:00 postfix.bench.test postfix/smtp[12]: 4A1: to=<r@remote.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.02, delays=0.01/0/0.01/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: received and discarded)
Nov 28 16:00:00 postfix.bench.test postfix/smtp[12]: 4A2: to=<r@remote.test>, relay=127.0.0.1[127.0.0.1]:2525, delay=0.02, dsn=2.0.0, status=sent (250 2.0.0 Ok)
Nov 28 16:00:01 postfix.bench.test postfix/smtp[13]: 4A3: to=<r@remote.test>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2526: Connection refused)
Nov 28 16:00:01 postfix.bench.test postfix/smtp[13]: warning: TLS library problem: x
Nov 28 16:00:02 postfix.bench.test postfix/qmgr[11]: 4A1: removed
`

func TestSummarisePostfixLog(t *testing.T) {
	p := summarisePostfixLog(testPostfixLog, "127.0.0.1[127.0.0.1]:2525")
	if p.statuses["sent"] != 2 || p.statuses["deferred"] != 1 || len(p.statuses) != 2 {
		t.Errorf("statuses %v", p.statuses)
	}
	if len(p.offRelay) != 1 || !strings.Contains(p.offRelay[0], "4A3") {
		t.Errorf("offRelay %q", p.offRelay)
	}
	if p.nWarnings != 1 || len(p.warnings) != 1 || !strings.Contains(p.warnings[0], "TLS library problem") {
		t.Errorf("warnings %d %q", p.nWarnings, p.warnings)
	}
}

func TestPostfixField(t *testing.T) {
	tests := []struct {
		line, name, want string
		ok               bool
	}{
		{"a: to=<x>, relay=h[1.2.3.4]:25, status=sent (ok)", "relay", "h[1.2.3.4]:25", true},
		{"a: to=<x>, relay=h[1.2.3.4]:25, status=sent (ok)", "status", "sent", true},
		{"a: status=bounced", "status", "bounced", true},
		{"a: xstatus=sent", "status", "", false},
		{"a: to=<x>", "status", "", false},
	}
	for _, tt := range tests {
		got, ok := postfixField(tt.line, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("postfixField(%q, %q) = %q, %v; want %q, %v", tt.line, tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzSummarisePostfixLog(f *testing.F) {
	f.Add(testPostfixLog)
	f.Add(" status= relay=")
	f.Add(" status=sent\r\n warning: ")
	f.Fuzz(func(t *testing.T, log string) {
		p := summarisePostfixLog(log, "127.0.0.1[127.0.0.1]:2525")
		lines := strings.Count(log, "\n") + 1
		n := 0
		for _, v := range p.statuses {
			n += v
		}
		if n > lines || p.nWarnings > lines {
			t.Errorf("%d statuses and %d warnings in %d lines", n, p.nWarnings, lines)
		}
		if len(p.offRelay) > maxLogExamples || len(p.warnings) > maxLogExamples {
			t.Errorf("more than %d examples kept", maxLogExamples)
		}
	})
}
