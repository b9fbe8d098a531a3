package dnslab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxward/internal/testpeer"
)

// Paths of the Debian-packaged programs the lab runs (packages nsd, unbound,
// ldnsutils and bind9-utils). They are absolute so that a test never picks up a
// different build from PATH.
const (
	nsdPath       = "/usr/sbin/nsd"
	unboundPath   = "/usr/sbin/unbound"
	ldnsKeygen    = "/usr/bin/ldns-keygen"
	ldnsSignzone  = "/usr/bin/ldns-signzone"
	ldnsKey2DS    = "/usr/bin/ldns-key2ds"
	bindKeygen    = "/usr/bin/dnssec-keygen"
	bindSignzone  = "/usr/bin/dnssec-signzone"
	bindDSFromKey = "/usr/bin/dnssec-dsfromkey"
)

// toolTimeout bounds one run of a key generator or signer; they take well under a
// second on the lab's small zones.
const toolTimeout = 30 * time.Second

// requireTools stops the test unless every program the zones need is installed:
// a skip normally, a failure under MXWARD_REQUIRE_INTEROP=1.
func requireTools(t testing.TB, zones []Zone) {
	t.Helper()
	need := []string{nsdPath, unboundPath}
	for _, z := range zones {
		if z.Unsigned {
			continue
		}
		switch z.Signer {
		case BIND:
			need = append(need, bindKeygen, bindSignzone, bindDSFromKey)
		default:
			need = append(need, ldnsKeygen, ldnsSignzone, ldnsKey2DS)
		}
	}
	for _, p := range need {
		testpeer.RequireTool(t, p)
	}
}

// run runs a short-lived tool in dir and returns its standard output. A failure is
// reported with the tool's standard error, which is where both tool suites explain
// themselves.
func run(ctx context.Context, dir, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(prog), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
