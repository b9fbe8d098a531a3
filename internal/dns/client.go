package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// udpSize is the EDNS0 buffer size advertised in queries: the value the DNS flag day
// 2020 settled on to avoid IP fragmentation.
const udpSize = 1232

// Config configures a Client. The zero value of every field but Servers has a default.
type Config struct {
	// Servers are the recursive resolvers to ask, in order, as "address:port" (or a bare
	// address for port 53). Only IP addresses are accepted: resolving a resolver's name
	// would need a resolver. ReadResolvConf reads them from /etc/resolv.conf.
	Servers []string
	// TrustAD makes the AD bit count from every server. Without it the AD bit is only
	// believed from servers on loopback, where nobody can forge or strip it on the wire
	// (RFC 7672 §2.1.1, DANE-01); answers from any other server are Insecure.
	TrustAD bool
	// TrustedServers lists servers (in the form of Servers) whose AD bit is believed
	// though they are not on loopback: a validating resolver over a private link.
	TrustedServers []string
	// Timeout bounds one query to one server, UDP and any TCP retry together.
	// Default 2 s. The context's deadline bounds the lookup as a whole.
	Timeout time.Duration
	// Attempts is how many times the server list is gone through before a lookup fails.
	// Default 2.
	Attempts int
	// CacheSize is the maximum number of replies kept. Default 4096; negative disables
	// the cache.
	CacheSize int
	// MaxTTL caps how long a positive reply is cached whatever its TTL. Default 1 h.
	MaxTTL time.Duration
	// MaxNegativeTTL caps how long NXDOMAIN and NODATA replies are cached (RFC 2308 §5
	// allows a local cap). Default 5 min, so that a domain fixing its DNS is not made
	// to wait long by a message that arrived just before.
	MaxNegativeTTL time.Duration
	// MaxCNAME is the longest CNAME chain followed. Default 8.
	MaxCNAME int
	// Now is the clock for cache expiry. Default time.Now.
	Now func() time.Time
	// Validator, when set, validates every reply in-process (mode "validate"): queries
	// carry the CD bit, the servers' AD bit is ignored and the status is the
	// Validator's. Without it the status comes from the AD bit (mode "trust-ad").
	Validator Validator
}

// Client is a Resolver that asks recursive resolvers over UDP, retrying over TCP when a
// reply is truncated. Queries carry EDNS0 with the DO bit so that a validating resolver
// sets AD on secure answers. It is safe for concurrent use.
type Client struct {
	servers  []server
	timeout  time.Duration
	attempts int
	maxTTL   time.Duration
	maxNeg   time.Duration
	maxCNAME int
	now      func() time.Time
	cache    *cache
	val      Validator
}

type server struct {
	addr    string // host:port
	trusted bool   // the AD bit is believed
}

var (
	_ Resolver  = (*Client)(nil)
	_ Exchanger = (*Client)(nil)
)

// NewClient returns a Client for c.
func NewClient(c Config) (*Client, error) {
	if len(c.Servers) == 0 {
		return nil, errors.New("dns client: no servers configured")
	}
	cl := &Client{
		timeout:  c.Timeout,
		attempts: c.Attempts,
		maxTTL:   c.MaxTTL,
		maxNeg:   c.MaxNegativeTTL,
		maxCNAME: c.MaxCNAME,
		now:      c.Now,
		val:      c.Validator,
	}
	trusted := make(map[string]bool)
	for _, s := range c.TrustedServers {
		addr, _, err := parseServer(s)
		if err != nil {
			return nil, fmt.Errorf("dns client: trusted server %q: %w", s, err)
		}
		trusted[addr] = true
	}
	for _, s := range c.Servers {
		addr, ip, err := parseServer(s)
		if err != nil {
			return nil, fmt.Errorf("dns client: server %q: %w", s, err)
		}
		cl.servers = append(cl.servers, server{addr: addr, trusted: c.TrustAD || trusted[addr] || ip.IsLoopback()})
	}
	if cl.timeout <= 0 {
		cl.timeout = 2 * time.Second
	}
	if cl.attempts <= 0 {
		cl.attempts = 2
	}
	if cl.maxTTL <= 0 {
		cl.maxTTL = time.Hour
	}
	if cl.maxNeg <= 0 {
		cl.maxNeg = 5 * time.Minute
	}
	if cl.maxCNAME <= 0 {
		cl.maxCNAME = 8
	}
	if cl.now == nil {
		cl.now = time.Now
	}
	switch {
	case c.CacheSize == 0:
		cl.cache = newCache(4096)
	case c.CacheSize > 0:
		cl.cache = newCache(c.CacheSize)
	}
	return cl, nil
}

// parseServer accepts "ip:port", "[ipv6]:port" or a bare IP address (port 53).
func parseServer(s string) (string, netip.Addr, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(ip.String(), "53"), ip, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("want an IP address with optional port: %w", err)
	}
	if ap.Port() == 0 {
		return "", netip.Addr{}, errors.New("port 0")
	}
	return ap.String(), ap.Addr(), nil
}

// LookupMX returns the MX records of name.
func (c *Client) LookupMX(ctx context.Context, name string) (MXResult, error) {
	a, rrs, err := c.lookup(ctx, name, mdns.TypeMX)
	return MXResult{Answer: a, Records: parseMX(rrs)}, err
}

// LookupTXT returns the TXT records of name.
func (c *Client) LookupTXT(ctx context.Context, name string) (TXTResult, error) {
	a, rrs, err := c.lookup(ctx, name, mdns.TypeTXT)
	return TXTResult{Answer: a, Records: parseTXT(rrs)}, err
}

// LookupTLSA returns the TLSA records at name, which is the full query name such as
// "_25._tcp.mx.example.com" (RFC 7672 §2.2.3).
func (c *Client) LookupTLSA(ctx context.Context, name string) (TLSAResult, error) {
	a, rrs, err := c.lookup(ctx, name, mdns.TypeTLSA)
	return TLSAResult{Answer: a, Records: parseTLSA(rrs)}, err
}

// LookupIP asks for the A and AAAA records of host in parallel. It fails only when
// neither lookup produced an address: with a TemporaryError if either failed
// temporarily, with an NXDomainError if both say the name does not exist. When one
// family has addresses and the other failed temporarily, the result carries the
// addresses and the failure in Partial.
func (c *Client) LookupIP(ctx context.Context, host string) (IPResult, error) {
	type half struct {
		a   Answer
		rrs []mdns.RR
		err error
	}
	var v4, v6 half
	var wg sync.WaitGroup
	wg.Go(func() { v6.a, v6.rrs, v6.err = c.lookup(ctx, host, mdns.TypeAAAA) })
	v4.a, v4.rrs, v4.err = c.lookup(ctx, host, mdns.TypeA)
	wg.Wait()

	for _, h := range []half{v4, v6} {
		if errors.Is(h.err, ErrInvalidName) {
			return IPResult{Answer: h.a}, h.err
		}
	}
	var r IPResult
	if v4.err == nil {
		r.IPv4 = parseA(v4.rrs)
	}
	if v6.err == nil {
		r.IPv6 = parseAAAA(v6.rrs)
	}
	r.Answer = v4.a
	if len(r.IPv4) == 0 && len(r.IPv6) > 0 {
		r.Answer = v6.a
	}
	// Statuses of the lookups that completed (answers and denials); a failed lookup
	// has none to contribute.
	var statuses, chains []Status
	for _, h := range []half{v4, v6} {
		if h.err == nil || IsNXDomain(h.err) {
			statuses = append(statuses, h.a.Status)
			chains = append(chains, h.a.ChainStatus)
		}
	}
	if len(statuses) > 0 {
		r.Status, r.ChainStatus = Weakest(statuses...), Weakest(chains...)
	}
	have := len(r.IPv4) > 0 || len(r.IPv6) > 0
	var temp error
	for _, h := range []half{v4, v6} {
		if IsTemporary(h.err) && temp == nil {
			temp = h.err
		}
	}
	switch {
	case have && temp != nil:
		r.Partial = temp
		return r, nil
	case temp != nil:
		return r, temp
	case IsNXDomain(v4.err) && IsNXDomain(v6.err):
		return r, v4.err
	case v4.err != nil && !IsNXDomain(v4.err):
		return r, v4.err
	case v6.err != nil && !IsNXDomain(v6.err):
		return r, v6.err
	}
	return r, nil
}

// lookup resolves name and type, following CNAMEs explicitly so that the chain and the
// status of each link are known (DANE-05). It returns the records of the type at the
// end of the chain.
func (c *Client) lookup(ctx context.Context, name string, qtype uint16) (Answer, []mdns.RR, error) {
	typ := mdns.TypeToString[qtype]
	norm := Normalize(name)
	a := Answer{Name: norm, Canonical: norm}
	if !validName(norm) {
		return a, nil, fmt.Errorf("lookup %q %s: %w", name, typ, ErrInvalidName)
	}
	a.ChainStatus = Secure
	cur := norm + "."
	seen := map[string]bool{cur: true}
	for {
		resp, v, err := c.query(ctx, cur, qtype)
		if err != nil {
			return a, nil, err
		}
		status := v.Status
		s, err := walk(resp, cur, qtype, seen)
		if err != nil {
			return a, nil, &TemporaryError{Name: Normalize(cur), Type: typ, Reason: "cname_loop", Err: err}
		}
		for _, l := range s.links {
			l.Status = status
			if ls, ok := v.Links[l.Name+"."]; ok {
				l.Status = ls
			} else if c.val == nil && status != Secure && len(a.Chain) == 0 && (qtype == mdns.TypeA || qtype == mdns.TypeAAAA) {
				// The AD bit covers the reply as a whole: a secure first CNAME in front of
				// an unsigned target would look insecure. Asking for the CNAME alone
				// tells its own status (RFC 7672 §2.1.3, DANE-05), which decides
				// whether the original MX host name may still be a TLSA base domain
				// (DANE-11). Only address lookups feed that decision.
				l.Status = c.linkStatus(ctx, l.Name+".")
			}
			a.Chain = append(a.Chain, l)
			a.ChainStatus = Weakest(a.ChainStatus, l.Status)
		}
		a.Reason, a.EDE = v.Reason, v.EDE
		a.Canonical = Normalize(s.final)
		a.Status = status
		if len(a.Chain) > c.maxCNAME {
			return a, nil, &TemporaryError{Name: norm, Type: typ, Reason: "cname_chain",
				Err: fmt.Errorf("more than %d CNAME links", c.maxCNAME)}
		}
		if s.nx {
			return a, nil, &NXDomainError{Name: a.Canonical, Type: typ}
		}
		if s.complete() {
			return a, s.records, nil
		}
		cur = s.final
	}
}

// linkStatus returns the status of the CNAME RRset at owner on its own, in trust-ad
// mode; a failed query leaves the link Insecure, which is never stronger than the truth.
func (c *Client) linkStatus(ctx context.Context, owner string) Status {
	_, v, err := c.query(ctx, owner, mdns.TypeCNAME)
	if err != nil {
		return Insecure
	}
	return v.Status
}

// validName reports whether name (normalised) is a host name or a service label name
// such as "_25._tcp.mx.example.com": LDH labels with underscores allowed, no empty
// labels, at most 63 octets a label and 253 in all. Escapes and other octets are refused
// rather than sent: no mail domain needs them.
func validName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return false
			}
		}
	}
	return true
}

// query returns the reply to one question, from the cache or from the servers, with its
// DNSSEC status. name is fully qualified and lower case.
func (c *Client) query(ctx context.Context, name string, qtype uint16) (*mdns.Msg, Validation, error) {
	key := cacheKey{name: name, qtype: qtype}
	if resp, v, ok := c.cache.get(key, c.now()); ok {
		return resp, v, nil
	}
	resp, srv, err := c.exchange(ctx, name, qtype)
	if err != nil {
		return nil, Validation{}, err
	}
	var v Validation
	switch {
	case c.val != nil:
		v = c.val.Validate(ctx, c, resp)
		if v.Status == Bogus {
			// Bogus data is never handed out, and not cached either: the next lookup
			// asks again, as a validating resolver would after its bogus-TTL.
			return nil, v, &TemporaryError{Name: Normalize(name), Type: mdns.TypeToString[qtype],
				Reason: "bogus", Err: errors.New(v.Reason), EDE: v.EDE}
		}
	case resp.AuthenticatedData && srv.trusted:
		v.Status = Secure
	default:
		v.Status = Insecure
	}
	if ttl, negative, ok := cacheTTL(resp, name, qtype); ok {
		d := time.Duration(ttl) * time.Second
		if negative {
			d = min(d, c.maxNeg)
		} else {
			d = min(d, c.maxTTL)
		}
		exp := c.now().Add(d)
		if !v.Expires.IsZero() && v.Expires.Before(exp) {
			exp = v.Expires
		}
		c.cache.put(key, resp, v, exp)
	}
	return resp, v, nil
}

// Exchange sends one query for name and qtype to the servers, in order, without the
// cache and without judging its DNSSEC status, and returns the first answer (NOERROR or
// NXDOMAIN). With a Validator configured the query carries CD. It is how the validator
// fetches DS and DNSKEY records.
func (c *Client) Exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	resp, _, err := c.exchange(ctx, mdns.CanonicalName(name), qtype)
	return resp, err
}

// exchange asks the servers in order until one gives an answer (NOERROR or NXDOMAIN),
// going through the list Attempts times.
func (c *Client) exchange(ctx context.Context, name string, qtype uint16) (*mdns.Msg, server, error) {
	var last error
	for range c.attempts {
		for _, srv := range c.servers {
			if err := ctx.Err(); err != nil {
				if last == nil {
					last = c.temp(name, qtype, "timeout", err)
				}
				return nil, srv, last
			}
			resp, err := c.exchangeServer(ctx, srv, name, qtype)
			if err == nil {
				return resp, srv, nil
			}
			last = err
		}
	}
	return nil, server{}, last
}

func (c *Client) temp(name string, qtype uint16, reason string, err error) *TemporaryError {
	return &TemporaryError{Name: Normalize(name), Type: mdns.TypeToString[qtype], Reason: reason, Err: err}
}

// exchangeServer sends one query to one server over UDP, and again over TCP if the
// reply is truncated, then checks the reply.
func (c *Client) exchangeServer(ctx context.Context, srv server, name string, qtype uint16) (*mdns.Msg, error) {
	req := new(mdns.Msg)
	req.SetQuestion(name, qtype) // a fresh random ID, RD set
	req.SetEdns0(udpSize, true)
	req.CheckingDisabled = c.val != nil
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	udp := &mdns.Client{Net: "udp", Timeout: c.timeout}
	resp, _, err := udp.ExchangeContext(qctx, req, srv.addr)
	if err != nil {
		return nil, c.temp(name, qtype, exchangeReason(err), fmt.Errorf("server %s: %w", srv.addr, err))
	}
	if resp.Truncated {
		tcp := &mdns.Client{Net: "tcp", Timeout: c.timeout}
		resp, _, err = tcp.ExchangeContext(qctx, req, srv.addr)
		if err == nil && resp.Truncated {
			err = errors.New("TCP reply truncated")
		}
		if err != nil {
			return nil, c.temp(name, qtype, "truncated", fmt.Errorf("server %s: retry over TCP: %w", srv.addr, err))
		}
	}
	return checkResponse(req, resp, srv.addr)
}

// checkResponse turns a reply into either an answer or a TemporaryError.
func checkResponse(req, resp *mdns.Msg, addr string) (*mdns.Msg, error) {
	q := req.Question[0]
	if err := checkReply(req, resp); err != nil {
		return nil, &TemporaryError{Name: Normalize(q.Name), Type: mdns.TypeToString[q.Qtype], Reason: "mismatch",
			Err: fmt.Errorf("server %s: %w", addr, err)}
	}
	if reason := rcodeReason(resp.Rcode); reason != "" {
		ede := edeOf(resp)
		if reason == "servfail" && dnssecFailure(ede) {
			// A validating resolver that says why (RFC 8914) lets a bogus answer be
			// told from an unreachable server.
			reason = "bogus"
		}
		return nil, &TemporaryError{Name: Normalize(q.Name), Type: mdns.TypeToString[q.Qtype], Reason: reason,
			Err: fmt.Errorf("server %s answered %s", addr, rcodeString(resp.Rcode)), EDE: ede}
	}
	if isReferral(resp) {
		// A server that does not recurse hands out referrals; taking one for NODATA
		// would turn "ask elsewhere" into "no MX records" (MX-05).
		return nil, &TemporaryError{Name: Normalize(q.Name), Type: mdns.TypeToString[q.Qtype], Reason: "referral",
			Err: fmt.Errorf("server %s answered with a referral; it is not a recursive resolver", addr)}
	}
	return resp, nil
}

func rcodeString(rcode int) string {
	if s, ok := mdns.RcodeToString[rcode]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rcode)
}

// exchangeReason classifies an exchange error for TemporaryError.Reason.
func exchangeReason(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, mdns.ErrId):
		return "mismatch"
	case errors.As(err, &oe):
		return "network"
	default:
		return "malformed"
	}
}
