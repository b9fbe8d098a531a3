// Package lab is a simulated internet inside the process, for `mxward lab` and the
// end-to-end tests: a DNSSEC-signed DNS tree (root, lab. and destination zones) served
// by an in-process recursive-style resolver, SMTP receivers with chosen certificates,
// an MTA-STS policy host with a lab CA, and an attacker on the path.
//
// Everything listens on 127.0.0.0/8 only. Receivers sit on distinct addresses
// (127.0.1.x) sharing one port, Internet.SMTPPort, so that MX → A → port works as it
// does on the internet with port 25; this relies on the whole of 127.0.0.0/8 being
// bindable, as it is on Linux.
//
// The attacker is switched per destination domain at run time (SetAttack): it can
// watch a connection (Passive), remove STARTTLS from the EHLO reply (StripSTARTTLS),
// answer the MX query with its own host (ForgeMX) or point the MX host's address at
// itself with the signatures stripped (ForgeSigned).
package lab
