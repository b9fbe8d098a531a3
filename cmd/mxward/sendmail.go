package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"mxward/internal/inject"
)

// cmdSendmail is the sendmail-compatible injector: it reads a message on stdin and hands it
// to the running server over the local socket. Exit codes follow sysexits(3), as callers of
// sendmail expect.
func cmdSendmail(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer) error {
	opts, err := inject.ParseArgs(args)
	if err != nil {
		return &exitError{code: inject.ExitCode(err), err: fmt.Errorf("sendmail: %w", err)}
	}
	cfg, _, err := loadConfig(opts.ConfigPath)
	if err != nil {
		return err
	}
	opts.Hostname = cfg.Hostname
	sock := cfg.Sendmail.Socket
	if opts.SocketPath != "" {
		sock = opts.SocketPath
	}
	id, err := inject.Submit(ctx, sock, stdin, opts)
	if errors.Is(err, inject.ErrServerNotRunning) {
		return &exitError{code: inject.ExitCode(err), err: fmt.Errorf("sendmail: mxward is not running (no server at %s)", sock)}
	}
	if err != nil {
		if id != "" {
			err = fmt.Errorf("queued as %s, but: %w", id, err)
		}
		return &exitError{code: inject.ExitCode(err), err: fmt.Errorf("sendmail: %w", err)}
	}
	return nil
}
