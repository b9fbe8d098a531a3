package dnssec_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"mxward/internal/dns"
	"mxward/internal/dnslab"
	"mxward/internal/dnssec"
)

// The differential proof of issue "DNS with DNSSEC status": zones signed by
// ldns-signzone and dnssec-signzone, served by NSD, judged by Unbound as a validating
// resolver, and the same questions judged by mxward's validator over Unbound with CD
// set. Every verdict must be the same, including for the deliberately broken zones.
//
// With -record, the replies mxward's validator saw are written to
// testdata/lab-replies.json together with Unbound's verdicts and the signing time, and
// TestRecordedLab replays them offline with a frozen clock.

var record = flag.Bool("record", false, "record the lab's replies to testdata/lab-replies.json")

const recordFile = "testdata/lab-replies.json"

// recording is the file format of recordFile.
type recording struct {
	// Now is the instant the lab signed for; replays validate at this time.
	Now     time.Time      `json:"now"`
	Anchors []string       `json:"anchors"`
	Cases   []recordedCase `json:"cases"`
}

type recordedCase struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Note    string `json:"note"`
	Unbound string `json:"unbound"` // Unbound's status
	Rcode   string `json:"rcode"`
	// Replies holds every reply the validator used, by "name TYPE", as base64 wire
	// format: the reply to the question itself first under "question".
	Replies map[string]string `json:"replies"`
}

// recorder is a dns.Exchanger that remembers what it passed on.
type recorder struct {
	ex      dns.Exchanger
	mu      sync.Mutex
	replies map[string]*mdns.Msg
}

func (r *recorder) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	m, err := r.ex.Exchange(ctx, name, qtype)
	if err == nil {
		r.mu.Lock()
		r.replies[replyKey(name, qtype)] = m
		r.mu.Unlock()
	}
	return m, err
}

func replyKey(name string, qtype uint16) string {
	return strings.ToLower(mdns.Fqdn(name)) + " " + mdns.TypeToString[qtype]
}

// overall is the status of a reply as a whole: the final RRset's together with every
// CNAME link before it, as a validating resolver's AD bit reports it.
func overall(v dns.Validation) dns.Status {
	ss := []dns.Status{v.Status}
	for _, s := range v.Links {
		ss = append(ss, s)
	}
	return dns.Weakest(ss...)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestAgainstUnbound(t *testing.T) {
	zones, cases := dnslab.DefaultTree()
	lab := dnslab.Start(t, zones, dnslab.Options{})
	ctx := ctxFor(t)
	anchors, err := dnssec.ReadAnchors(lab.AnchorFile())
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := dns.NewClient(dns.Config{Servers: []string{lab.Resolver}, Validator: nopValidator{}, CacheSize: -1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// One validator for the whole run, as in production (warm key cache), and a fresh
	// one per case, so that each verdict is also reached from a cold start.
	shared, err := dnssec.New(dnssec.Config{Anchors: anchors, Now: func() time.Time { return lab.Now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := recording{Now: lab.Now, Anchors: lab.RootAnchor}
	for _, c := range cases {
		typ := mdns.TypeToString[c.Type]
		t.Run(caseName(c.Name, typ), func(t *testing.T) {
			want, err := lab.Verdict(ctx, c.Name, c.Type)
			if err != nil {
				t.Fatalf("unbound: %v", err)
			}
			if want.Status != c.Want {
				t.Errorf("unbound says %v; the lab meant %s (%s)", want, c.Want, c.Note)
			}
			r := &recorder{ex: upstream, replies: map[string]*mdns.Msg{}}
			resp, err := r.Exchange(ctx, c.Name, c.Type)
			if err != nil {
				// Unbound with CD still answers for bogus data; a failure here is the
				// lab's, not a verdict.
				t.Fatalf("ask unbound with CD: %v", err)
			}
			cold, err := dnssec.New(dnssec.Config{Anchors: anchors, Now: func() time.Time { return lab.Now }})
			if err != nil {
				t.Fatal(err)
			}
			vc := cold.Validate(ctx, r, resp)
			vs := shared.Validate(ctx, upstream, resp)
			for _, got := range []struct {
				what string
				v    dns.Validation
			}{{"cold", vc}, {"warm", vs}} {
				if g := overall(got.v); string(g) != string(want.Status) {
					t.Errorf("%s validator: %s (%s, EDE %v); unbound: %v [%s]", got.what, g, got.v.Reason, got.v.EDE, want, c.Note)
				}
			}
			rc := recordedCase{Name: c.Name, Type: typ, Note: c.Note, Unbound: string(want.Status),
				Rcode: mdns.RcodeToString[want.Rcode], Replies: map[string]string{}}
			for k, m := range r.replies {
				if k == replyKey(c.Name, c.Type) {
					k = "question"
				}
				wire, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				rc.Replies[k] = base64.StdEncoding.EncodeToString(wire)
			}
			rec.Cases = append(rec.Cases, rc)
		})
	}
	if *record && !t.Failed() {
		b, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(recordFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %d cases to %s", len(rec.Cases), recordFile)
	}
}

// caseName names a subtest "www.example.test/A", or "root/DNSKEY".
func caseName(name, typ string) string {
	if name == "." {
		return "root/" + typ
	}
	return strings.TrimSuffix(name, ".") + "/" + typ
}

// nopValidator makes the client ask with CD and judge nothing: the raw upstream.
type nopValidator struct{}

func (nopValidator) Validate(context.Context, dns.Exchanger, *mdns.Msg) dns.Validation {
	return dns.Validation{Status: dns.Insecure}
}

// replay is a dns.Exchanger serving recorded replies only.
type replay map[string]*mdns.Msg

func (r replay) Exchange(_ context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	if m, ok := r[replyKey(name, qtype)]; ok {
		return m.Copy(), nil
	}
	return nil, &dns.TemporaryError{Name: name, Type: mdns.TypeToString[qtype], Reason: "timeout",
		Err: fmt.Errorf("not recorded")}
}

// TestRecordedLab replays the recorded lab offline, with the clock frozen at the time
// the zones were signed for, and requires Unbound's recorded verdict for every case.
func TestRecordedLab(t *testing.T) {
	b, err := os.ReadFile(recordFile)
	if err != nil {
		t.Fatalf("%v (run TestAgainstUnbound with -record to make it)", err)
	}
	var rec recording
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	anchors, err := dnssec.ParseAnchors(strings.NewReader(strings.Join(rec.Anchors, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Cases) < 20 {
		t.Fatalf("only %d recorded cases", len(rec.Cases))
	}
	for _, c := range rec.Cases {
		t.Run(caseName(c.Name, c.Type), func(t *testing.T) {
			rp := replay{}
			var question *mdns.Msg
			for k, s := range c.Replies {
				wire, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				m := new(mdns.Msg)
				if err := m.Unpack(wire); err != nil {
					t.Fatal(err)
				}
				if k == "question" {
					// The validator may ask the question again (". DNSKEY").
					question = m
					k = replyKey(c.Name, mdns.StringToType[c.Type])
				}
				rp[k] = m
			}
			v, err := dnssec.New(dnssec.Config{Anchors: anchors, Now: func() time.Time { return rec.Now }})
			if err != nil {
				t.Fatal(err)
			}
			got := v.Validate(context.Background(), rp, question)
			if g := overall(got); string(g) != c.Unbound {
				t.Errorf("replayed: %s (%s); unbound said %s [%s]", g, got.Reason, c.Unbound, c.Note)
			}
			// A month later every signature in the recording has expired: nothing may
			// still be secure (RFC 4035 §5.3.1).
			late, _ := dnssec.New(dnssec.Config{Anchors: anchors, Now: func() time.Time { return rec.Now.Add(60 * 24 * time.Hour) }})
			if g := overall(late.Validate(context.Background(), rp, question)); g == dns.Secure {
				t.Errorf("secure with every signature expired")
			}
		})
	}
}
