package dnslab

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// addrRE finds every address@port or address:port a configuration names.
var addrRE = regexp.MustCompile(`\b(\d+\.\d+\.\d+\.\d+)[@:]?(\d*)`)

// onlyLoopback fails the test if conf names any address outside 127.0.0.0/8.
func onlyLoopback(t *testing.T, conf string) {
	t.Helper()
	for _, m := range addrRE.FindAllStringSubmatch(conf, -1) {
		a, err := netip.ParseAddr(m[1])
		if err != nil || !a.IsLoopback() {
			t.Errorf("configuration names %s, which is not a loopback address", m[0])
		}
	}
}

func TestNSDConfig(t *testing.T) {
	conf := nsdConfig("/lab", 5353, []string{".", "test.", "a.test."})
	for _, want := range []string{
		"ip-address: 127.0.0.1@5353\n",
		"port: 5353\n",
		`username: ""`,
		`database: ""`,
		`zonesdir: "/lab/zones"`,
		`pidfile: "/lab/nsd/nsd.pid"`,
		`xfrdfile: "/lab/nsd/xfrd.state"`,
		`zonelistfile: "/lab/nsd/zone.list"`,
		"rrl-ratelimit: 0\n",
		"remote-control:\n\tcontrol-enable: no\n",
		"verify:\n\tenable: no\n",
		"zone:\n\tname: \".\"\n\tzonefile: \"root.zone\"\n",
		"zone:\n\tname: \"a.test.\"\n\tzonefile: \"a.test.zone\"\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nsd.conf lacks %q:\n%s", want, conf)
		}
	}
	onlyLoopback(t, conf)
	// Every path NSD writes is inside the lab directory.
	for _, m := range regexp.MustCompile(`"(/[^"]*)"`).FindAllStringSubmatch(conf, -1) {
		if !strings.HasPrefix(m[1], "/lab/") {
			t.Errorf("nsd.conf names %s, outside the lab directory", m[1])
		}
	}
}

func TestUnboundConfig(t *testing.T) {
	f := newUnboundFiles("/lab")
	stubs := map[string]string{".": "127.0.0.1:5353", "test.": "127.0.0.1:5353", "mitm.test.": "127.0.0.1:6000"}
	conf := unboundConfig(f, 5300, stubs)
	for _, want := range []string{
		"interface: 127.0.0.1@5300\n",
		"do-not-query-localhost: no\n",
		`trust-anchor-file: "/lab/unbound/root.ds"`,
		`root-hints: "/lab/unbound/root.hints"`,
		`pidfile: "/lab/unbound/unbound.pid"`,
		`directory: "/lab/unbound"`,
		"ede: yes\n", "val-log-level: 2\n", "use-syslog: no\n",
		`username: ""`, `chroot: ""`,
		"aggressive-nsec: no\n", "qname-minimisation: no\n",
		"val-sig-skew-min: 0\n", "val-sig-skew-max: 0\n",
		"do-daemonize: no\n",
		"remote-control:\n\tcontrol-enable: no\n",
		"stub-zone:\n\tname: \".\"\n\tstub-addr: 127.0.0.1@5353\n",
		"stub-zone:\n\tname: \"test.\"\n\tstub-addr: 127.0.0.1@5353\n",
		"stub-zone:\n\tname: \"mitm.test.\"\n\tstub-addr: 127.0.0.1@6000\n",
		"local-zone: \"test.\" nodefault\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("unbound.conf lacks %q:\n%s", want, conf)
		}
	}
	if n := strings.Count(conf, "stub-zone:"); n != len(stubs) {
		t.Errorf("unbound.conf has %d stub zones, want %d", n, len(stubs))
	}
	for _, unwanted := range []string{"forward-zone", "auto-trust-anchor-file", "control-enable: yes"} {
		if strings.Contains(conf, unwanted) {
			t.Errorf("unbound.conf contains %q", unwanted)
		}
	}
	onlyLoopback(t, conf)
	if hints := rootHints(); addrRE.MatchString(hints) || strings.Contains(hints, " NS ") {
		t.Errorf("root hints name a server: %q", hints)
	}
}

func TestUnboundAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:53":    "127.0.0.1@53",
		"127.0.0.1:40000": "127.0.0.1@40000",
		"127.0.0.1":       "127.0.0.1",
	} {
		if got := unboundAddr(in); got != want {
			t.Errorf("unboundAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlainUnboundConfig(t *testing.T) {
	f := newPlainUnboundFiles("/lab")
	stubs := map[string]string{".": "127.0.0.1:5353", "test.": "127.0.0.1:5353"}
	conf := plainUnboundConfig(f, 5301, stubs)
	for _, want := range []string{
		"interface: 127.0.0.1@5301\n",
		`module-config: "iterator"` + "\n",
		`pidfile: "/lab/unbound-plain/unbound.pid"`,
		`directory: "/lab/unbound-plain"`,
		`root-hints: "/lab/unbound-plain/root.hints"`,
		"aggressive-nsec: no\n", "qname-minimisation: no\n",
		"stub-zone:\n\tname: \".\"\n\tstub-addr: 127.0.0.1@5353\n",
		"local-zone: \"test.\" nodefault\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("plain unbound.conf lacks %q:\n%s", want, conf)
		}
	}
	// No validator, so nothing that configures one.
	for _, unwanted := range []string{"trust-anchor-file", "validator", "val-", "forward-zone", "control-enable: yes"} {
		if strings.Contains(conf, unwanted) {
			t.Errorf("plain unbound.conf contains %q", unwanted)
		}
	}
	onlyLoopback(t, conf)
}
