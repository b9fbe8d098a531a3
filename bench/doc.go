// Package bench measures mxward against Postfix on the same machine in the same
// run: how many messages each accepts per second over one-message-per-connection
// SMTP sessions, what memory each uses doing so, and what an idle connection
// costs.
//
// The measurement lives in accept_test.go and runs only with MXWARD_BENCH=1 (see
// docs/performance.md for the method and the figures). The package's non-test
// files are the pieces it is built from: a deliberately minimal lockstep SMTP
// client, a bounded load runner, and readers for the /proc figures.
//
// The client is our own rather than net/smtp or swaks so that every server sees
// exactly the same bytes in the same order, with no pipelining and no extension
// that only one of them offers, and so that the client's own cost stays small and
// identical for every server.
package bench
