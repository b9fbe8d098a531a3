package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxSASLField bounds each decoded PLAIN or LOGIN field. RFC 4616 requires
// accepting 255 octets; longer names or passwords are left some room.
const maxSASLField = 1024

// maxSASLEncoded bounds the base64 text decoded, before decoding.
const maxSASLEncoded = 4 * (3*maxSASLField + 2 + 2) / 3

// decodeSASL decodes a client's base64 response strictly: standard alphabet,
// padding required, no line breaks or other characters (which Go's decoder
// would otherwise skip), no stray bits in the last character. Both "" and "="
// decode to nothing, "=" being how RFC 4954 writes an empty initial response.
// A "*" cancelling the exchange is the server's to recognize beforehand.
func decodeSASL(b64 string) ([]byte, error) {
	if b64 == "" || b64 == "=" {
		return nil, nil
	}
	if len(b64) > maxSASLEncoded {
		return nil, errors.New("response too long")
	}
	if strings.ContainsAny(b64, "\r\n") {
		return nil, errors.New("response is not valid base64: contains a line break")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("response is not valid base64: %w", err)
	}
	return b, nil
}

// DecodePlain decodes a SASL PLAIN response (RFC 4616):
// [authzid] NUL authcid NUL passwd, base64-encoded.
//
// The response must contain exactly two NULs, so no field contains one. The
// fields must be UTF-8 and at most 1024 octets each; authcid and passwd must
// not be empty. mxward does not let one user act for another, so authzid must
// be empty or name the same user as authcid (compared as Users.Verify compares
// names); it is returned as sent.
func DecodePlain(b64 string) (authzid, authcid, password string, err error) {
	msg, err := decodeSASL(b64)
	if err != nil {
		return "", "", "", fmt.Errorf("decode PLAIN response: %w", err)
	}
	fields := bytes.Split(msg, []byte{0})
	if len(fields) != 3 {
		return "", "", "", errors.New("decode PLAIN response: want authzid NUL authcid NUL password")
	}
	for i, name := range []string{"authorization identity", "authentication identity", "password"} {
		if len(fields[i]) > maxSASLField {
			return "", "", "", fmt.Errorf("decode PLAIN response: %s longer than %d octets", name, maxSASLField)
		}
		if !utf8.Valid(fields[i]) {
			return "", "", "", fmt.Errorf("decode PLAIN response: %s is not UTF-8", name)
		}
	}
	authzid, authcid, password = string(fields[0]), string(fields[1]), string(fields[2])
	switch {
	case authcid == "":
		return "", "", "", errors.New("decode PLAIN response: empty authentication identity")
	case password == "":
		return "", "", "", errors.New("decode PLAIN response: empty password")
	case authzid != "" && canonicalName(authzid) != canonicalName(authcid):
		return "", "", "", errors.New("decode PLAIN response: authorization identity differs from authentication identity")
	}
	return authzid, authcid, password, nil
}

// DecodeLoginField decodes one response of the LOGIN mechanism, the user name
// or the password, each sent base64-encoded on its own line. The field must
// not be empty, contain NUL or exceed 1024 octets. Unlike PLAIN it need not be
// UTF-8: LOGIN was never standardized, and old clients send passwords in their
// local character set.
func DecodeLoginField(b64 string) (string, error) {
	b, err := decodeSASL(b64)
	if err != nil {
		return "", fmt.Errorf("decode LOGIN response: %w", err)
	}
	switch {
	case len(b) == 0:
		return "", errors.New("decode LOGIN response: empty")
	case len(b) > maxSASLField:
		return "", fmt.Errorf("decode LOGIN response: longer than %d octets", maxSASLField)
	case bytes.IndexByte(b, 0) >= 0:
		return "", errors.New("decode LOGIN response: contains NUL")
	}
	return string(b), nil
}
