package policylist_test

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"mxward/internal/policylist"
)

func Example() {
	const doc = `{
  "timestamp": "2026-11-28T18:00:00Z",
  "expires": "2026-12-12T18:00:00Z",
  "version": "0.1",
  "author": "Example Mail Security Project",
  "policy-aliases": {},
  "policies": {
    "example.com": {"mode": "enforce", "mxs": [".mail.example.com"]}
  }
}`
	l, err := policylist.ParseEFF(strings.NewReader(doc))
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	// Consulted only when DANE and MTA-STS have nothing to say (LIST-06).
	e, ok, err := l.Lookup("example.com", now)
	fmt.Println(ok, err, e.Mode, e.Policy())
	fmt.Println(e.MatchesMX("mx1.eu.mail.example.com"), e.MatchesMX("mx.example.org"))

	// After expiry the list applies to nobody, and the error is for the operator.
	_, ok, err = l.Lookup("example.com", now.AddDate(0, 1, 0))
	fmt.Println(ok, errors.Is(err, policylist.ErrExpired))
	// Output:
	// true <nil> enforce secure match=.mail.example.com
	// true false
	// false true
}
