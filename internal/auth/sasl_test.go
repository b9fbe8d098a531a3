package auth

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestDecodePlain(t *testing.T) {
	long := strings.Repeat("x", maxSASLField)
	tests := []struct {
		name                 string
		in                   string // base64 as sent
		authz, authc, passwd string
		wantErr              string
	}{
		{name: "no authzid", in: b64("\x00bob\x00secret"), authc: "bob", passwd: "secret"},
		{name: "authzid equal", in: b64("bob\x00bob\x00secret"), authz: "bob", authc: "bob", passwd: "secret"},
		{name: "authzid domain case", in: b64("bob@Example.org\x00bob@example.ORG\x00pw"), authz: "bob@Example.org", authc: "bob@example.ORG", passwd: "pw"},
		{name: "UTF-8", in: b64("\x00jösé@exämple.org\x00pässwörd ✓"), authc: "jösé@exämple.org", passwd: "pässwörd ✓"},
		{name: "spaces kept", in: b64("\x00 bob \x00 pw "), authc: " bob ", passwd: " pw "},
		{name: "longest fields", in: b64(long + "\x00" + long + "\x00" + long), authz: long, authc: long, passwd: long},
		{name: "RFC 4616 example", in: "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", authc: "tim", passwd: "tanstaaftanstaaf"},

		{name: "authzid differs", in: b64("alice\x00bob\x00pw"), wantErr: "differs"},
		{name: "authzid local part case", in: b64("Bob@example.org\x00bob@example.org\x00pw"), wantErr: "differs"},
		{name: "one NUL", in: b64("bob\x00pw"), wantErr: "want authzid NUL"},
		{name: "no NUL", in: b64("bobpw"), wantErr: "want authzid NUL"},
		{name: "NUL in password", in: b64("\x00bob\x00p\x00w"), wantErr: "want authzid NUL"},
		{name: "trailing NUL", in: b64("\x00bob\x00pw\x00"), wantErr: "want authzid NUL"},
		{name: "empty authcid", in: b64("\x00\x00pw"), wantErr: "empty authentication identity"},
		{name: "empty password", in: b64("\x00bob\x00"), wantErr: "empty password"},
		{name: "only NULs", in: b64("\x00\x00"), wantErr: "empty authentication identity"},
		{name: "invalid UTF-8 password", in: b64("\x00bob\x00\xff\xfe"), wantErr: "password is not UTF-8"},
		{name: "invalid UTF-8 authcid", in: b64("\x00b\xc3\x00pw"), wantErr: "authentication identity is not UTF-8"},
		{name: "authcid too long", in: b64("\x00" + long + "x\x00pw"), wantErr: "longer than 1024"},
		{name: "password too long", in: b64("\x00bob\x00" + long + "x"), wantErr: "longer than 1024"},
		{name: "encoded too long", in: strings.Repeat("AAAA", 1100), wantErr: "too long"},

		{name: "empty", in: "", wantErr: "want authzid NUL"},
		{name: "empty initial response", in: "=", wantErr: "want authzid NUL"},
		{name: "cancel", in: "*", wantErr: "not valid base64"},
		{name: "missing padding", in: "AGJvYgBzZWNyZXQ", wantErr: "not valid base64"},
		{name: "excess padding", in: "AGJvYgBzZWNyZXQ==", wantErr: "not valid base64"},
		{name: "stray bits", in: "AGJvYgBzZWNyZXR=", wantErr: "not valid base64"},
		{name: "line break", in: "AGJvYgBz\r\nZWNyZXQ=", wantErr: "line break"},
		{name: "space", in: "AGJvYgBz ZWNyZXQ=", wantErr: "not valid base64"},
		{name: "URL alphabet", in: "AGJvYgB_ZWNyZXQ=", wantErr: "not valid base64"},
		{name: "trailing garbage", in: b64("\x00bob\x00pw") + "AA", wantErr: "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authz, authc, passwd, err := DecodePlain(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodePlain error = %v, want one containing %q", err, tt.wantErr)
				}
				if authz != "" || authc != "" || passwd != "" {
					t.Errorf("fields returned with an error: %q %q %q", authz, authc, passwd)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if authz != tt.authz || authc != tt.authc || passwd != tt.passwd {
				t.Errorf("DecodePlain = %q, %q, %q; want %q, %q, %q", authz, authc, passwd, tt.authz, tt.authc, tt.passwd)
			}
		})
	}
}

func TestDecodeLoginField(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "user", in: "Ym9iQGV4YW1wbGUub3Jn", want: "bob@example.org"},
		{name: "password with spaces", in: b64(" s e c r e t "), want: " s e c r e t "},
		{name: "latin-1 password", in: b64("p\xe4ss"), want: "p\xe4ss"},
		{name: "longest", in: b64(strings.Repeat("y", maxSASLField)), want: strings.Repeat("y", maxSASLField)},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "empty initial response", in: "=", wantErr: "empty"},
		{name: "NUL", in: b64("bo\x00b"), wantErr: "NUL"},
		{name: "too long", in: b64(strings.Repeat("y", maxSASLField+1)), wantErr: "longer than 1024"},
		{name: "cancel", in: "*", wantErr: "not valid base64"},
		{name: "missing padding", in: "Ym9", wantErr: "not valid base64"},
		{name: "line break", in: "Ym9i\n", wantErr: "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeLoginField(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeLoginField error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("DecodeLoginField = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzDecodePlain(f *testing.F) {
	for _, s := range []string{
		b64("\x00bob\x00secret"),
		b64("bob\x00bob\x00secret"),
		b64("alice\x00bob\x00pw"),
		b64("\x00\x00"),
		"AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
		"=",
		"*",
		"AGJvYgBz\r\nZWNyZXQ=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		authz, authc, passwd, err := DecodePlain(in)
		if err != nil {
			return
		}
		if authc == "" || passwd == "" {
			t.Fatalf("accepted an empty field: %q %q", authc, passwd)
		}
		for _, s := range []string{authz, authc, passwd} {
			if strings.ContainsRune(s, 0) || !utf8.ValidString(s) || len(s) > maxSASLField {
				t.Fatalf("accepted field %q", s)
			}
		}
		if authz != "" && canonicalName(authz) != canonicalName(authc) {
			t.Fatalf("accepted authzid %q for authcid %q", authz, authc)
		}
		// Strict decoding means the input is the one canonical encoding.
		if got := b64(authz + "\x00" + authc + "\x00" + passwd); got != in {
			t.Fatalf("accepted %q, canonical encoding %q", in, got)
		}
	})
}

// FuzzPlainFields builds PLAIN responses from arbitrary fields and checks that
// exactly the ones RFC 4616 and mxward's rules allow are accepted, unchanged.
func FuzzPlainFields(f *testing.F) {
	f.Add("", "bob", "secret")
	f.Add("bob", "bob", "secret")
	f.Add("Bob@EXAMPLE.org", "Bob@example.org", "pw")
	f.Add("x", "bob", "pw")
	f.Add("", "b\x00b", "pw")
	f.Add("", "bob", "\xff")
	f.Fuzz(func(t *testing.T, authz, authc, passwd string) {
		valid := authc != "" && passwd != "" &&
			(authz == "" || canonicalName(authz) == canonicalName(authc))
		for _, s := range []string{authz, authc, passwd} {
			valid = valid && !strings.ContainsRune(s, 0) && utf8.ValidString(s) && len(s) <= maxSASLField
		}
		gz, gc, gp, err := DecodePlain(b64(authz + "\x00" + authc + "\x00" + passwd))
		if (err == nil) != valid {
			t.Fatalf("DecodePlain(%q, %q, %q) error = %v, want valid = %v", authz, authc, passwd, err, valid)
		}
		if valid && (gz != authz || gc != authc || gp != passwd) {
			t.Fatalf("decoded %q %q %q, want %q %q %q", gz, gc, gp, authz, authc, passwd)
		}
	})
}

func FuzzDecodeLoginField(f *testing.F) {
	for _, s := range []string{"Ym9i", "=", "", "*", b64("a\x00b"), b64("p\xe4ss"), "Ym9i\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := DecodeLoginField(in)
		raw, rawErr := base64.StdEncoding.Strict().DecodeString(in)
		if err != nil {
			return
		}
		if rawErr != nil || !bytes.Equal(raw, []byte(got)) {
			t.Fatalf("accepted %q as %q; standard decoding gives %q, %v", in, got, raw, rawErr)
		}
		if got == "" || strings.ContainsRune(got, 0) || len(got) > maxSASLField {
			t.Fatalf("accepted field %q", got)
		}
		if b64(got) != in {
			t.Fatalf("accepted non-canonical %q", in)
		}
	})
}
