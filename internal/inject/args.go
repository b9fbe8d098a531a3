package inject

import (
	"strings"
)

// Options is a parsed sendmail command line.
type Options struct {
	ExtractRecipients bool   // -t: take recipients from To/Cc/Bcc (or Resent-*) as well
	Sender            string // -f or -r, in SMTP form (bare local parts qualified later); "" with SenderSet is the null sender
	SenderSet         bool   // whether -f or -r was given
	FullName          string // -F: display name for a From: header added to the message
	IgnoreDots        bool   // -i, -oi: a line holding only "." does not end the message
	Notify            string // -N as an SMTP NOTIFY value: "NEVER" or e.g. "SUCCESS,FAILURE"
	Ret               string // -R as an SMTP RET value: "FULL" or "HDRS"
	EnvID             string // -V: DSN envelope identifier
	BodyType          string // -B: "7BIT" or "8BITMIME"; "" means detect from the content
	ConfigPath        string // -C, --config: configuration file for the caller to load
	SocketPath        string // --socket: injection socket overriding the configured one

	// Recipients are the addresses given as arguments, in SMTP form. Those given
	// without a domain ("root") are kept bare and qualified with Hostname later.
	Recipients []string

	// Hostname is not set by ParseArgs: the caller fills it in from the configuration.
	// It qualifies bare addresses, makes the default sender user@Hostname and names
	// the host in added Message-ID headers. When empty, the system host name is used.
	Hostname string
}

// Options that take an argument, attached ("-fuser") or as the next word ("-f user").
// Options marked ignored are accepted for compatibility and have no effect: error
// modes (-e), hop counts (-h), log labels and files (-L, -X), the received protocol
// (-p) and long-form settings (-O).
const (
	argOptions     = "BCFLNORVXbefhopqr"
	ignoredArgOpts = "LOXehp"
	// flagOptions are options without an argument. -m (send to me too), -n (no
	// aliasing), -v (verbose), -U (initial submission) and -G (gateway submission)
	// have no meaning for mxward and are ignored.
	flagOptions = "GUimntv"
)

// ParseArgs parses a sendmail command line (without the program name) the way Postfix's
// sendmail(1) does: single-letter options may be clustered ("-ti", "-tif sender"), an
// option's argument may be attached or the next word, options end at "--" or at the
// first word that is not an option, and the remaining words are recipients, each
// possibly a comma-separated list. Only delivery mode (-bm) is supported; other modes
// are rejected. Every error is a *UsageError.
func ParseArgs(args []string) (Options, error) {
	var o Options
	i := 0
	dashdash := false
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			dashdash = true
			break
		}
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a[2:], "=")
			switch name {
			case "config", "socket":
			default:
				return Options{}, usagef("unknown option --%s", name)
			}
			if !hasVal {
				if i+1 >= len(args) {
					return Options{}, usagef("option --%s requires an argument", name)
				}
				i++
				val = args[i]
			}
			if val == "" {
				return Options{}, usagef("option --%s requires a non-empty argument", name)
			}
			if name == "config" {
				o.ConfigPath = val
			} else {
				o.SocketPath = val
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.IndexByte(flagOptions, c) >= 0 {
				switch c {
				case 't':
					o.ExtractRecipients = true
				case 'i':
					o.IgnoreDots = true
				}
				continue
			}
			if strings.IndexByte(argOptions, c) < 0 {
				return Options{}, usagef("unknown option -%c", c)
			}
			var val string
			if j+1 < len(a) {
				val = a[j+1:]
			} else {
				if i+1 >= len(args) {
					return Options{}, usagef("option -%c requires an argument", c)
				}
				i++
				val = args[i]
			}
			if err := o.set(c, val); err != nil {
				return Options{}, err
			}
			break
		}
	}
	for _, a := range args[i:] {
		if !dashdash && strings.HasPrefix(a, "-") {
			return Options{}, usagef("option %q after a recipient address: options go first", a)
		}
		list, err := parseAddressList(a, "")
		if err != nil {
			return Options{}, usagef("bad recipient address %q: %v", a, err)
		}
		if len(list) == 0 {
			return Options{}, usagef("no address in recipient argument %q", a)
		}
		o.Recipients = append(o.Recipients, list...)
	}
	if len(o.Recipients) == 0 && !o.ExtractRecipients {
		return Options{}, usagef("no recipients: give recipient addresses or -t to take them from the message headers")
	}
	return o, nil
}

// set applies option c with argument val.
func (o *Options) set(c byte, val string) error {
	if strings.IndexByte(ignoredArgOpts, c) >= 0 {
		return nil
	}
	switch c {
	case 'b':
		if val != "m" {
			return usagef("unsupported mode -b%s: mxward sendmail only delivers a message read from standard input (-bm)", val)
		}
	case 'q':
		return usagef("unsupported option -q%s: mxward runs its queue itself", val)
	case 'o':
		// -oi is the old spelling of -i; other -o settings (-oem, -odb, ...) are
		// accepted and ignored, as Postfix does.
		if strings.HasPrefix(val, "i") {
			o.IgnoreDots = true
		}
	case 'f', 'r':
		s := strings.TrimSpace(val)
		if s == "" || s == "<>" {
			o.Sender, o.SenderSet = "", true
			return nil
		}
		list, err := parseAddressList(s, "")
		if err == nil && len(list) != 1 {
			err = errNoAddress
		}
		if err != nil {
			return usagef("bad sender address -%c %q: %v", c, val, err)
		}
		o.Sender, o.SenderSet = list[0], true
	case 'F':
		for _, r := range val {
			if r < 0x20 || r == 0x7f {
				return usagef("full name -F %q contains control characters", val)
			}
		}
		o.FullName = strings.TrimSpace(val)
	case 'N':
		n, err := parseNotify(val)
		if err != nil {
			return err
		}
		o.Notify = n
	case 'R':
		switch strings.ToLower(val) {
		case "full":
			o.Ret = "FULL"
		case "hdrs":
			o.Ret = "HDRS"
		default:
			return usagef("bad -R %q: want full or hdrs", val)
		}
	case 'V':
		if val == "" || len(val) > 100 {
			return usagef("bad -V envelope ID %q: want 1 to 100 characters", val)
		}
		for i := 0; i < len(val); i++ {
			if val[i] < 0x20 || val[i] > 0x7e {
				return usagef("bad -V envelope ID %q: printable ASCII only", val)
			}
		}
		o.EnvID = val
	case 'B':
		switch strings.ToUpper(val) {
		case "7BIT":
			o.BodyType = "7BIT"
		case "8BITMIME":
			o.BodyType = "8BITMIME"
		default:
			return usagef("bad -B %q: want 7BIT or 8BITMIME", val)
		}
	case 'C':
		if val == "" {
			return usagef("option -C requires a non-empty argument")
		}
		o.ConfigPath = val
	}
	return nil
}

// parseNotify turns a -N argument into an SMTP NOTIFY value (RFC 3461 §4.1): "never",
// or a comma-separated list of success, failure and delay.
func parseNotify(val string) (string, error) {
	var seen [3]bool
	words := [3]string{"SUCCESS", "FAILURE", "DELAY"}
	parts := strings.Split(val, ",")
	for _, p := range parts {
		p = strings.ToUpper(strings.TrimSpace(p))
		switch p {
		case "NEVER":
			if len(parts) != 1 {
				return "", usagef("bad -N %q: never cannot be combined with other values", val)
			}
			return "NEVER", nil
		case "SUCCESS", "FAILURE", "DELAY":
			for k, w := range words {
				if w == p {
					seen[k] = true
				}
			}
		default:
			return "", usagef("bad -N %q: want never or a list of success, failure, delay", val)
		}
	}
	var out []string
	for k, w := range words {
		if seen[k] {
			out = append(out, w)
		}
	}
	return strings.Join(out, ","), nil
}
