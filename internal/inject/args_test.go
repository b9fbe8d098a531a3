package inject

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Options
	}{
		{"one recipient", []string{"alice@example.org"},
			Options{Recipients: []string{"alice@example.org"}}},
		{"bare local part kept for later qualification", []string{"root"},
			Options{Recipients: []string{"root"}}},
		{"comma list in one argument", []string{"a@example.org, Bob <b@example.org>,root"},
			Options{Recipients: []string{"a@example.org", "b@example.org", "root"}}},
		{"several arguments", []string{"a@example.org", "b@example.org"},
			Options{Recipients: []string{"a@example.org", "b@example.org"}}},
		{"display name with bare angle address", []string{"Joe <joe>"},
			Options{Recipients: []string{"joe"}}},
		{"quoted local part", []string{`"john doe"@example.org`},
			Options{Recipients: []string{`"john doe"@example.org`}}},
		{"UTF-8 address", []string{"jörg@bücher.example"},
			Options{Recipients: []string{"jörg@bücher.example"}}},
		{"-t alone", []string{"-t"},
			Options{ExtractRecipients: true}},
		{"-t plus arguments", []string{"-t", "a@example.org"},
			Options{ExtractRecipients: true, Recipients: []string{"a@example.org"}}},
		{"-ti cluster", []string{"-ti"},
			Options{ExtractRecipients: true, IgnoreDots: true}},
		{"-it cluster", []string{"-it"},
			Options{ExtractRecipients: true, IgnoreDots: true}},
		{"-oi -t", []string{"-oi", "-t"},
			Options{ExtractRecipients: true, IgnoreDots: true}},
		{"-o i as two words", []string{"-o", "i", "x@example.org"},
			Options{IgnoreDots: true, Recipients: []string{"x@example.org"}}},
		{"-i", []string{"-i", "x@example.org"},
			Options{IgnoreDots: true, Recipients: []string{"x@example.org"}}},
		{"other -o ignored", []string{"-oem", "-odb", "-oQ/var/spool", "x@example.org"},
			Options{Recipients: []string{"x@example.org"}}},
		{"-f separate", []string{"-f", "bounce@example.org", "x@example.org"},
			Options{Sender: "bounce@example.org", SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-f attached", []string{"-fbounce@example.org", "x@example.org"},
			Options{Sender: "bounce@example.org", SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-f angle brackets", []string{"-f", "<bounce@example.org>", "x@example.org"},
			Options{Sender: "bounce@example.org", SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-f <> null sender", []string{"-f", "<>", "x@example.org"},
			Options{SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-f empty null sender", []string{"-f", "", "x@example.org"},
			Options{SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-f<> attached", []string{"-f<>", "x@example.org"},
			Options{SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-f bare local part", []string{"-f", "daemon", "x@example.org"},
			Options{Sender: "daemon", SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-r as -f", []string{"-r", "bounce@example.org", "x@example.org"},
			Options{Sender: "bounce@example.org", SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"last -f wins", []string{"-f", "a@example.org", "-f", "b@example.org", "x@example.org"},
			Options{Sender: "b@example.org", SenderSet: true, Recipients: []string{"x@example.org"}}},
		{"-tif cluster with argument in next word", []string{"-tif", "s@example.org"},
			Options{ExtractRecipients: true, IgnoreDots: true, Sender: "s@example.org", SenderSet: true}},
		{"-tifs cluster with attached argument", []string{"-tifs@example.org"},
			Options{ExtractRecipients: true, IgnoreDots: true, Sender: "s@example.org", SenderSet: true}},
		{"-F separate", []string{"-F", "Cron Daemon", "-t"},
			Options{FullName: "Cron Daemon", ExtractRecipients: true}},
		{"-F attached", []string{"-FCronDaemon", "-t"},
			Options{FullName: "CronDaemon", ExtractRecipients: true}},
		{"-N never", []string{"-N", "never", "-t"},
			Options{Notify: "NEVER", ExtractRecipients: true}},
		{"-N list canonical order", []string{"-N", "delay,Success, failure", "-t"},
			Options{Notify: "SUCCESS,FAILURE,DELAY", ExtractRecipients: true}},
		{"-Nfailure attached", []string{"-Nfailure", "-t"},
			Options{Notify: "FAILURE", ExtractRecipients: true}},
		{"-R full", []string{"-R", "full", "-t"},
			Options{Ret: "FULL", ExtractRecipients: true}},
		{"-R HDRS", []string{"-RHDRS", "-t"},
			Options{Ret: "HDRS", ExtractRecipients: true}},
		{"-V envid", []string{"-V", "job 42+x=y", "-t"},
			Options{EnvID: "job 42+x=y", ExtractRecipients: true}},
		{"-v ignored", []string{"-v", "-t"},
			Options{ExtractRecipients: true}},
		{"-B 8BITMIME", []string{"-B8BITMIME", "-t"},
			Options{BodyType: "8BITMIME", ExtractRecipients: true}},
		{"-B 7bit", []string{"-B", "7bit", "-t"},
			Options{BodyType: "7BIT", ExtractRecipients: true}},
		{"-bm", []string{"-bm", "-t"},
			Options{ExtractRecipients: true}},
		{"-b m as two words", []string{"-b", "m", "-t"},
			Options{ExtractRecipients: true}},
		{"-C", []string{"-C", "/etc/mxward/alt.toml", "-t"},
			Options{ConfigPath: "/etc/mxward/alt.toml", ExtractRecipients: true}},
		{"-C attached", []string{"-C/etc/mxward.toml", "-t"},
			Options{ConfigPath: "/etc/mxward.toml", ExtractRecipients: true}},
		{"--config", []string{"--config", "/etc/m.toml", "-t"},
			Options{ConfigPath: "/etc/m.toml", ExtractRecipients: true}},
		{"--config=", []string{"--config=/etc/m.toml", "-t"},
			Options{ConfigPath: "/etc/m.toml", ExtractRecipients: true}},
		{"--socket", []string{"--socket", "/run/mxward/inject.sock", "-t"},
			Options{SocketPath: "/run/mxward/inject.sock", ExtractRecipients: true}},
		{"--socket=", []string{"--socket=/tmp/s", "-t"},
			Options{SocketPath: "/tmp/s", ExtractRecipients: true}},
		{"-- then recipient starting with dash", []string{"-t", "--", "-weird@example.org"},
			Options{ExtractRecipients: true, Recipients: []string{"-weird@example.org"}}},
		{"ignored options with arguments", []string{"-h", "10", "-L", "label", "-O", "DeliveryMode=b", "-X", "/tmp/log", "-e", "m", "-p", "local", "-t"},
			Options{ExtractRecipients: true}},
		{"ignored flags", []string{"-m", "-n", "-U", "-G", "-t"},
			Options{ExtractRecipients: true}},
		{"cron style", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			Options{FullName: "CronDaemon", IgnoreDots: true, BodyType: "8BITMIME", Recipients: []string{"root"}}},
		{"group in argument", []string{"team: a@example.org, b@example.org;"},
			Options{Recipients: []string{"a@example.org", "b@example.org"}}},
		{"comment dropped", []string{"root (Cron Daemon)"},
			Options{Recipients: []string{"root"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseArgs(%q)\n got  %+v\n want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // substring of the error
	}{
		{"no recipients", nil, "no recipients"},
		{"only options", []string{"-i", "-f", "a@example.org"}, "no recipients"},
		{"unknown option", []string{"-Z", "x@example.org"}, "unknown option -Z"},
		{"unknown option in cluster", []string{"-tZ"}, "unknown option -Z"},
		{"unknown long option", []string{"--verbose", "-t"}, "unknown option --verbose"},
		{"-bs", []string{"-bs"}, "unsupported mode -bs"},
		{"-bd", []string{"-bd"}, "unsupported mode -bd"},
		{"-bp", []string{"-bp"}, "unsupported mode -bp"},
		{"-bv", []string{"-bv", "x@example.org"}, "unsupported mode -bv"},
		{"-bi newaliases", []string{"-bi"}, "unsupported mode -bi"},
		{"-q", []string{"-q1h"}, "unsupported option -q1h"},
		{"-f missing argument", []string{"-f"}, "option -f requires an argument"},
		{"-F missing argument", []string{"-t", "-F"}, "option -F requires an argument"},
		{"--config missing argument", []string{"--config"}, "option --config requires an argument"},
		{"--socket empty", []string{"--socket=", "-t"}, "non-empty"},
		{"-C empty", []string{"-C", "", "-t"}, "non-empty"},
		{"bad -N word", []string{"-N", "sometimes", "-t"}, "bad -N"},
		{"-N never combined", []string{"-N", "never,success", "-t"}, "never cannot be combined"},
		{"-N empty", []string{"-N", "", "-t"}, "bad -N"},
		{"bad -R", []string{"-R", "body", "-t"}, "bad -R"},
		{"bad -B", []string{"-B", "BINARYMIME", "-t"}, "bad -B"},
		{"-V too long", []string{"-V", strings.Repeat("x", 101), "-t"}, "bad -V"},
		{"-V control", []string{"-V", "a\nb", "-t"}, "printable ASCII"},
		{"-V empty", []string{"-V", "", "-t"}, "bad -V"},
		{"-F with newline", []string{"-F", "Evil\r\nBcc: x@example.org", "-t"}, "control characters"},
		{"bad sender", []string{"-f", "a@@b", "x@example.org"}, "bad sender address"},
		{"two senders in -f", []string{"-f", "a@example.org, b@example.org", "x@example.org"}, "bad sender address"},
		{"bad recipient", []string{"x@@example.org"}, "bad recipient address"},
		{"empty recipient argument", []string{""}, "no address"},
		{"option after recipient", []string{"x@example.org", "-t"}, `option "-t" after a recipient`},
		{"lone dash", []string{"x@example.org", "-"}, `option "-" after a recipient`},
		{"recipient with newline", []string{"a@example.org\r\nRCPT TO:<b@example.org>"}, "bad recipient address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseArgs(tt.args)
			if err == nil {
				t.Fatalf("ParseArgs(%q) succeeded, want error containing %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseArgs(%q) = %q, want it to contain %q", tt.args, err, tt.want)
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Errorf("error %T is not a *UsageError", err)
			}
			if code := ExitCode(err); code != EX_USAGE {
				t.Errorf("ExitCode = %d, want EX_USAGE", code)
			}
		})
	}
}
