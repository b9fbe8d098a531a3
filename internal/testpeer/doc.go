// Package testpeer runs real third-party mail software next to mxward's tests, so
// that interoperability is checked against the programs mxward meets in production
// rather than against mxward's own idea of SMTP.
//
// It is imported only from _test.go files. Every peer it starts is a private,
// throwaway instance living in t.TempDir(): the system's /etc/postfix, its queue and
// its services are never read for configuration, written or signalled.
//
// # Required Debian packages
//
// The interop tests need the Debian packages postfix and swaks:
//
//	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix swaks
//
// Installing postfix this way leaves /etc/postfix/main.cf absent and the system
// instance stopped; neither matters, because every command this package runs names
// its own configuration directory. Tests that need a missing program are skipped,
// unless MXWARD_REQUIRE_INTEROP=1 is set, in which case they fail: CI sets it so a
// lost install step cannot turn the interop suite into a row of skips. Postfix
// instances also need root (Postfix insists on root-owned queue directories and
// switches to the postfix and nobody users), and are skipped or failed the same way
// without it.
//
// # How a private Postfix instance is run
//
// Verified against Debian 12's Postfix 3.7:
//
//   - "postfix -c DIR" works for a directory that is not listed in
//     alternate_config_directories when run by root, and so does "sendmail -C DIR"
//     and "postqueue -c DIR". Nothing has to be added to the default main.cf, which
//     need not even exist. The commands are also given MAIL_CONFIG=DIR, which is
//     what Postfix passes on to the programs it runs itself.
//   - maillog_file is refused (and the refusal goes to syslog, which is usually
//     absent in a container) unless it starts with one of maillog_file_prefixes, so
//     the instance sets that parameter to its own directory.
//   - "postfix check" creates the queue subdirectories with the ownerships Postfix
//     wants (postfix, and the postdrop group for maildrop and public); the harness
//     only creates the queue directory itself (root) and hands data_directory and
//     the Maildir base to their users. "postfix set-permissions" is never run: it
//     would also reset the modes of system files such as /usr/sbin/postdrop.
//   - The master daemon is started with "postfix start-fg" rather than "postfix
//     start". Both run the same checks and the same master, but start-fg keeps the
//     master a descendant of the test process: a failure to start (a port taken
//     after all, a bad parameter) is seen when the command exits instead of
//     through a log, and the exited master is reaped by its parent. With "postfix
//     start" the master is re-parented to PID 1, which in containers often never
//     reaps it. Master processes are stopped with "postfix stop" and, only if
//     that hangs, by killing the master's own pid.
//   - All services run without chroot, so nothing has to be copied into the queue
//     directory, and the instance never resolves a name: smtpd does no reverse
//     lookups, the SMTP client has DNS disabled and binds to 127.0.0.1, mail is
//     only ever relayed to the configured relay host (which callers give as
//     "[127.0.0.1]:port"), and with no relay host all non-local mail is refused
//     by the error transport. Local delivery is disabled the same way, so nothing
//     is ever written to /var/mail.
//
// The temporary directory that holds an instance is made traversable by others
// (mode 0755), because virtual(8) delivers as the nobody user and Postfix daemons
// run as postfix.
//
// # Swaks
//
// Swaks resolves the local host name once at start-up for its default HELO name
// and Message-ID (on Debian images /etc/hosts answers that). Every other lookup is
// avoided by requiring an explicit --server, --socket or --pipe argument: without
// one swaks would look up the recipient domain's MX records.
package testpeer
