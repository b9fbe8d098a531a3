package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// The relay benchmark reads both servers' logs afterwards to check that every
// message went where and how it should: to the sink on 127.0.0.1, over TLS,
// delivered at the first attempt. These are the summaries it reads them into.

// maxLogExamples bounds the offending lines a summary keeps.
const maxLogExamples = 5

// mxwardLog summarises a JSON log of mxward.
type mxwardLog struct {
	records int            // all JSON records
	levels  map[string]int // records by level
	// Outbound "delivery" records (those with an ip or mx field; local
	// deliveries have neither).
	deliveries int
	results    map[string]int // by result
	// tls counts deliveries by "tls tls_version cipher", e.g.
	// "untrusted TLSv1.3 TLS_AES_128_GCM_SHA256".
	tls map[string]int
	// offLoopback and notEncrypted keep the first delivery records sent
	// anywhere but 127.0.0.1, or without TLS.
	offLoopback, notEncrypted []string
}

// summariseMxwardLog reads mxward's JSON log. Lines that are not JSON objects
// (a panic's stack, say) are counted as records of level "?" and otherwise
// skipped.
func summariseMxwardLog(r io.Reader) (mxwardLog, error) {
	l := mxwardLog{levels: map[string]int{}, results: map[string]int{}, tls: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		l.records++
		var rec struct {
			Level      string `json:"level"`
			Msg        string `json:"msg"`
			Result     string `json:"result"`
			IP         string `json:"ip"`
			MX         string `json:"mx"`
			TLS        string `json:"tls"`
			TLSVersion string `json:"tls_version"`
			Cipher     string `json:"cipher"`
		}
		if json.Unmarshal(line, &rec) != nil {
			l.levels["?"]++
			continue
		}
		l.levels[rec.Level]++
		if rec.Msg != "delivery" || rec.IP == "" && rec.MX == "" && rec.TLS == "" {
			continue
		}
		l.deliveries++
		l.results[rec.Result]++
		l.tls[strings.TrimSpace(rec.TLS+" "+rec.TLSVersion+" "+rec.Cipher)]++
		if rec.IP != "127.0.0.1" || rec.MX != "" && rec.MX != "127.0.0.1" {
			l.offLoopback = appendExample(l.offLoopback, string(line))
		}
		if rec.TLS == "" || rec.TLS == "none" || !strings.HasPrefix(rec.TLSVersion, "TLSv1.") {
			l.notEncrypted = appendExample(l.notEncrypted, string(line))
		}
	}
	if err := sc.Err(); err != nil {
		return l, fmt.Errorf("read mxward log: %w", err)
	}
	return l, nil
}

func appendExample(xs []string, s string) []string {
	if len(xs) < maxLogExamples {
		xs = append(xs, s)
	}
	return xs
}

// postfixLog summarises a Postfix maillog.
type postfixLog struct {
	// statuses counts delivery status lines (smtp(8)'s "status=sent" and the
	// like) by status.
	statuses map[string]int
	// offRelay keeps the first status lines whose relay is not the expected one.
	offRelay []string
	// warnings keeps the first "warning:", "error:", "fatal:" and "panic:" lines
	// and counts them all.
	warnings  []string
	nWarnings int
}

// summarisePostfixLog reads a maillog; relay is the relay= value every status
// line must carry, e.g. "127.0.0.1[127.0.0.1]:2525".
func summarisePostfixLog(log, relay string) postfixLog {
	p := postfixLog{statuses: map[string]int{}}
	for line := range strings.Lines(log) {
		line = strings.TrimRight(line, "\r\n")
		for _, w := range []string{" warning: ", " error: ", " fatal: ", " panic: "} {
			if strings.Contains(line, w) {
				p.nWarnings++
				p.warnings = appendExample(p.warnings, line)
				break
			}
		}
		status, ok := postfixField(line, "status")
		if !ok {
			continue
		}
		p.statuses[status]++
		if r, _ := postfixField(line, "relay"); r != relay {
			p.offRelay = appendExample(p.offRelay, line)
		}
	}
	return p
}

// postfixField returns the value of "name=value" in a Postfix log line: the
// text after the first " name=" up to the next comma or space.
func postfixField(line, name string) (string, bool) {
	_, rest, ok := strings.Cut(line, " "+name+"=")
	if !ok {
		return "", false
	}
	if i := strings.IndexAny(rest, ", "); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}
