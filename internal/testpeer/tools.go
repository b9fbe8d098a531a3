package testpeer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Paths of the Debian-packaged programs the harness runs. They are absolute so a
// test never picks up a different build from PATH.
const (
	PostfixPath   = "/usr/sbin/postfix"
	SendmailPath  = "/usr/sbin/sendmail"
	PostqueuePath = "/usr/sbin/postqueue"
	SwaksPath     = "/usr/bin/swaks"
)

// RequireInteropEnv is the environment variable that turns a missing interop
// prerequisite from a skip into a failure.
const RequireInteropEnv = "MXWARD_REQUIRE_INTEROP"

// swaksTimeout bounds one swaks run. Swaks has its own per-command timeouts, but
// those add up across a transaction; this is the backstop for a hung peer.
const swaksTimeout = 60 * time.Second

// RequireTool stops the test unless the executable at path exists. A developer
// without the package installed gets a skip; with MXWARD_REQUIRE_INTEROP=1 (as in
// CI) the test fails instead, so a missing install cannot pass silently.
func RequireTool(t testing.TB, path string) {
	t.Helper()
	if err := checkExecutable(path); err != nil {
		unavailable(t, "%v", err)
	}
}

// SwaksAvailable reports whether swaks is installed.
func SwaksAvailable() bool {
	return checkExecutable(SwaksPath) == nil
}

// Swaks runs swaks with args and returns its combined output. The test is skipped
// (or failed, see RequireTool) if swaks is missing. The arguments must name the
// server with --server, --socket or --pipe: otherwise swaks would look up the MX
// records of the recipient's domain, and tests never use DNS. A non-zero exit is
// returned as an error together with the output, since swaks exits non-zero for
// every rejected transaction and some tests expect one.
func Swaks(t testing.TB, args ...string) (output string, err error) {
	t.Helper()
	RequireTool(t, SwaksPath)
	if !namesServer(args) {
		return "", errors.New("swaks: arguments name no --server, --socket or --pipe; refusing to let swaks look up MX records")
	}
	ctx, cancel := context.WithTimeout(context.Background(), swaksTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, SwaksPath, args...)
	cmd.Env = append(os.Environ(), "LANG=C")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("swaks %s: timed out after %v", strings.Join(args, " "), swaksTimeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("swaks %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// namesServer reports whether swaks arguments say where to connect, in any of the
// spellings swaks accepts: "--server X", "--server=X", "-s X" and likewise for
// --socket and --pipe.
func namesServer(args []string) bool {
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		switch name {
		case "-s", "--server", "--socket", "--pipe":
			return true
		}
	}
	return false
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("required tool %s: %w", path, err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("required tool %s is not executable", path)
	}
	return nil
}

// unavailable ends the test because a prerequisite is missing: a skip normally,
// a failure when the environment demands interop tests.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireInteropEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, RequireInteropEnv)
	}
	t.Skipf("%s (set %s=1 to fail instead)", msg, RequireInteropEnv)
}
