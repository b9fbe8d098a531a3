package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that it returns either a Config
// or an error, and that every error it reports is an *Error pointing at a
// line of the input.
func FuzzParse(f *testing.F) {
	for _, p := range []string{examplePath, filepath.Join("testdata", "lmtp.toml")} {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"",
		"hostname = 1\n",
		"[[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\nrole = \"submission\"\ntls = \"none\"\n[[listener]]\nadress = 1\n",
		"[local]\ndomains = [\"example.org\"]\naliases = { \"a@example.org\" = [\"b@example.org\"], \"x\" = [] }\n",
		"[limits]\nmax_message_size = \"1.5GiB\"\ncommand_timeout = \"1d\"\n",
		"a = \"\"\"\nb = 1\n\"\"\"\n[x.\"y.z\"]\n'q' = [1, [2], {r = 3}]\n",
		"listener = []\n",
		"[relay]\ntrusted_networks = [\"::ffff:1.2.3.4/104\", \"1.2.3.4\"]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
		if err == nil {
			return
		}
		lines := strings.Count(string(data), "\n") + 1
		var errs []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		} else {
			errs = []error{err}
		}
		for _, e := range errs {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("error %q is a %T, not an *Error", e, e)
			}
			if ce.Line < 0 || ce.Line > lines {
				t.Fatalf("error %q: line %d outside 1..%d", ce, ce.Line, lines)
			}
		}
	})
}
