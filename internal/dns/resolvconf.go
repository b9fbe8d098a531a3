package dns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
)

// ErrNoNameservers is returned when a resolv.conf names no usable server.
var ErrNoNameservers = errors.New("no nameserver lines")

// ReadResolvConf returns the servers named in the resolv.conf file at path, as
// "address:53" strings in file order.
func ReadResolvConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read resolver configuration: %w", err)
	}
	defer f.Close()
	servers, err := ParseResolvConf(f)
	if err != nil {
		return nil, fmt.Errorf("read resolver configuration %s: %w", path, err)
	}
	return servers, nil
}

// ParseResolvConf reads resolv.conf(5) text and returns the servers of its nameserver
// lines as "address:53" strings, in order. Everything else is ignored on purpose:
// "search" and "domain" would make relative names of next-hop domains, which RFC 5321
// §5.1 forbids (MX-01), and "options" tune a stub resolver this package is not.
// Lines whose address does not parse are skipped, as the C library does; a file
// without any usable nameserver line yields ErrNoNameservers.
func ParseResolvConf(r io.Reader) ([]string, error) {
	var servers []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		servers = append(servers, net.JoinHostPort(ip.String(), "53"))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, ErrNoNameservers
	}
	return servers, nil
}
