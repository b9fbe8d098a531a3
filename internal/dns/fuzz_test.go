package dns

import (
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// replySeeds returns packed replies of the kinds the client handles.
func replySeeds(t testing.TB) [][]byte {
	msgs := []struct {
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string
	}{
		{"example.com.", mdns.TypeMX, mdns.RcodeSuccess, []string{"example.com. 300 IN MX 10 mx.example.com."}, nil},
		{"alias.example.com.", mdns.TypeA, mdns.RcodeSuccess,
			[]string{"alias.example.com. 300 IN CNAME mx.example.com.", "mx.example.com. 300 IN A 192.0.2.1"}, nil},
		{"loop.example.com.", mdns.TypeMX, mdns.RcodeSuccess,
			[]string{"loop.example.com. 300 IN CNAME loop2.example.com.", "loop2.example.com. 300 IN CNAME loop.example.com."}, nil},
		{"gone.example.com.", mdns.TypeMX, mdns.RcodeNameError, nil,
			[]string{"example.com. 3600 IN SOA ns.example.com. h.example.com. 1 2 3 4 300"}},
		{"example.com.", mdns.TypeTLSA, mdns.RcodeSuccess,
			[]string{"example.com. 300 IN TLSA 3 1 1 00ff", "example.com. 300 IN TXT \"a\" \"b\""}, nil},
		{"example.com.", mdns.TypeAAAA, mdns.RcodeServerFailure, nil, nil},
	}
	var out [][]byte
	for _, m := range msgs {
		msg := new(mdns.Msg)
		msg.SetQuestion(m.qname, m.qtype)
		msg.Id = 4242
		msg.Response = true
		msg.Rcode = m.rcode
		for _, s := range m.answer {
			rr, err := mdns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			msg.Answer = append(msg.Answer, rr)
		}
		for _, s := range m.ns {
			rr, err := mdns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			msg.Ns = append(msg.Ns, rr)
		}
		b, err := msg.Pack()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzReply feeds arbitrary wire messages through everything that reads a reply. The
// question sent is taken from the reply when it has one, so that the checks pass and
// the chain walking and record parsing are reached as well.
func FuzzReply(f *testing.F) {
	for _, b := range replySeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x10, 0x92, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		resp := new(mdns.Msg)
		if err := resp.Unpack(data); err != nil {
			return
		}
		req := new(mdns.Msg)
		req.SetQuestion("example.com.", mdns.TypeMX)
		if len(resp.Question) > 0 && len(resp.Question[0].Name) > 0 {
			q := resp.Question[0]
			req.Question[0] = mdns.Question{Name: q.Name, Qtype: q.Qtype, Qclass: q.Qclass}
		}
		req.Id = resp.Id
		got, err := checkResponse(req, resp, "127.0.0.1:53")
		if err != nil {
			if !IsTemporary(err) {
				t.Fatalf("reply rejected with a non-temporary error: %v", err)
			}
			return
		}
		name := strings.ToLower(req.Question[0].Name)
		for _, qtype := range []uint16{req.Question[0].Qtype, mdns.TypeMX, mdns.TypeA, mdns.TypeAAAA, mdns.TypeTXT, mdns.TypeTLSA, mdns.TypeCNAME} {
			s, err := walk(got, name, qtype, map[string]bool{name: true})
			if err != nil {
				continue
			}
			if len(s.links) > len(got.Answer) {
				t.Fatalf("%d links from %d answer records", len(s.links), len(got.Answer))
			}
			s.complete()
			cacheTTL(got, name, qtype)
			parseMX(s.records)
			parseA(s.records)
			parseAAAA(s.records)
			parseTXT(s.records)
			parseTLSA(s.records)
			for _, mx := range parseMX(s.records) {
				if mx.Host != Normalize(mx.Host) {
					t.Fatalf("MX host %q not normalised", mx.Host)
				}
			}
		}
	})
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 127.0.0.1\n")
	f.Add("search example.com\nnameserver ::1 # c\nnameserver fe80::1%eth0\n")
	f.Add("nameserver\nnameserver bogus\n;nameserver 192.0.2.1\n")
	f.Fuzz(func(t *testing.T, text string) {
		servers, err := ParseResolvConf(strings.NewReader(text))
		if err != nil {
			return
		}
		if len(servers) == 0 {
			t.Fatal("no servers and no error")
		}
		for _, s := range servers {
			if _, _, err := parseServer(s); err != nil {
				t.Fatalf("ParseResolvConf produced %q, which NewClient refuses: %v", s, err)
			}
		}
	})
}
