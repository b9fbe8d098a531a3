package smtpserver

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"mxward/internal/auth"
	"mxward/internal/smtp"
)

// cmdAuth handles AUTH PLAIN and LOGIN (RFC 4954) on submission listeners, only under TLS.
func (s *session) cmdAuth(arg string) bool {
	mech, initial, _ := strings.Cut(arg, " ")
	mech = strings.ToUpper(mech)
	switch {
	case s.l.Role != RoleSubmission:
		s.reply(smtp.R(503, "5.5.1", "AUTH not available on this port"))
		return true
	case s.tls == nil:
		s.reply(smtp.R(538, "5.7.11", "Encryption required for requested authentication mechanism"))
		return true
	case s.helo == "" || !s.esmtp:
		s.reply(smtp.R(503, "5.5.1", "Send EHLO first"))
		return true
	case s.authUser != "":
		s.reply(smtp.R(503, "5.5.1", "Already authenticated"))
		return true
	case s.tx != nil:
		s.reply(smtp.R(503, "5.5.1", "AUTH not allowed during a mail transaction"))
		return true
	case mech != "PLAIN" && mech != "LOGIN":
		s.reply(smtp.R(504, "5.5.4", "Unrecognized authentication mechanism"))
		return true
	}
	if s.cfg.AuthThrottle != nil && !s.cfg.AuthThrottle.Allowed(s.ip) {
		s.log.Warn("auth throttled")
		s.reply(smtp.R(454, "4.7.0", "Too many failed authentication attempts, try again later"))
		return true
	}

	var user, pass string
	var err error
	switch mech {
	case "PLAIN":
		resp := initial
		if resp == "" {
			if resp, err = s.challenge(""); err != nil {
				return s.authAborted(err)
			}
		} else if resp == "=" {
			resp = ""
		}
		_, user, pass, err = auth.DecodePlain(resp)
	case "LOGIN":
		resp := initial
		if resp == "" {
			if resp, err = s.challenge("VXNlcm5hbWU6"); err != nil { // "Username:"
				return s.authAborted(err)
			}
		}
		if user, err = auth.DecodeLoginField(resp); err == nil {
			if resp, err = s.challenge("UGFzc3dvcmQ6"); err != nil { // "Password:"
				return s.authAborted(err)
			}
			pass, err = auth.DecodeLoginField(resp)
		}
	}
	if err != nil {
		s.reply(smtp.R(501, "5.5.2", "Cannot decode the authentication data"))
		return true
	}
	if s.cfg.Users == nil || !s.cfg.Users.Verify(user, pass) {
		var delay time.Duration
		if s.cfg.AuthThrottle != nil {
			s.cfg.AuthThrottle.Failure(s.ip)
			delay = s.cfg.AuthThrottle.Delay(s.ip)
		}
		s.log.Warn("auth failed", "auth_user", sanitize(user))
		time.Sleep(delay)
		s.reply(smtp.R(535, "5.7.8", "Authentication credentials invalid"))
		return true
	}
	if s.cfg.AuthThrottle != nil {
		s.cfg.AuthThrottle.Success(s.ip)
	}
	s.authUser = user
	s.log.Info("authenticated", "auth_user", user)
	s.reply(smtp.R(235, "2.7.0", "Authentication successful"))
	return true
}

var errAuthCancelled = errors.New("authentication cancelled")

// challenge sends a 334 and reads the client's response line.
func (s *session) challenge(text string) (string, error) {
	s.reply(smtp.R(334, "", text))
	if err := s.flush(); err != nil {
		return "", err
	}
	s.readTimeout = s.cfg.CommandTimeout
	line, err := s.readLine()
	if err != nil {
		return "", err
	}
	if line == "*" {
		return "", errAuthCancelled
	}
	return line, nil
}

func (s *session) authAborted(err error) bool {
	if err == errAuthCancelled {
		s.reply(smtp.R(501, "5.0.0", "Authentication cancelled"))
		return true
	}
	if err == errLineTooLong {
		s.reply(smtp.R(500, "5.5.6", "Authentication exchange line too long"))
		return true
	}
	return false
}

// peerUID returns the uid of the process at the other end of a unix socket (SO_PEERCRED),
// recorded in the Received header of locally injected mail; -1 if unknown.
func peerUID(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	raw.Control(func(fd uintptr) {
		cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if err == nil {
			uid = int(cred.Uid)
		}
	})
	return uid
}
