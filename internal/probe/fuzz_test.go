package probe

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"mxward/internal/dane"
)

// FuzzProbeHost feeds arbitrary server bytes to the probe: whatever a receiver sends,
// the probe must return within its timeout, without panicking, and claim TLS only with
// a chain to show for it.
func FuzzProbeHost(f *testing.F) {
	f.Add([]byte("220 mx.test ESMTP\r\n250-mx.test\r\n250 STARTTLS\r\n220 go\r\n"))
	f.Add([]byte("220 mx.test ESMTP\r\n250 mx.test\r\n221 bye\r\n"))
	f.Add([]byte("554 no\r\n"))
	f.Add([]byte("220-a\r\n220 b\r\n250-x\r\n250-STARTTLS\r\n250 SIZE 10\r\n454 not now\r\n"))
	f.Add([]byte("220 x\r\n250 x\r\n\x16\x03\x01\x00\x05hello"))
	f.Fuzz(func(t *testing.T, server []byte) {
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, s := net.Pipe()
			go func() {
				defer s.Close()
				go io.Copy(io.Discard, s)
				s.SetWriteDeadline(time.Now().Add(time.Second))
				s.Write(server)
			}()
			return c, nil
		}
		o := Options{Dial: dial, Hostname: "sender.test", Timeout: 2 * time.Second}
		start := time.Now()
		p := probeHost(context.Background(), o, netip.MustParseAddr("127.0.0.1"), 25, "mx.a.test", dane.Host{}, nil, time.Now)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("probe took %v", d)
		}
		if p.STARTTLS && len(p.Chain) == 0 {
			t.Errorf("TLS claimed without a chain: %+v", p)
		}
		if !p.STARTTLS && p.DANEMatch {
			t.Errorf("DANE match without TLS: %+v", p)
		}
	})
}
