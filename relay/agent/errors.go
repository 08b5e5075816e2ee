package agent

import "errors"

// Sentinel errors.
var (
	// ErrBadTicket reports a ticket the relay cannot read: corrupted, or not
	// one it issued.
	ErrBadTicket = errors.New("agent: bad ticket")
	// ErrServerURL reports a server URL the agent refuses: not absolute, or
	// plain http:// without Options.Insecure.
	ErrServerURL = errors.New("agent: bad server URL")
	// ErrUnauthorized reports that the relay refused the agent's name or
	// token (HTTP 401). The agent keeps retrying, since an operator may fix
	// the relay's config and reload it.
	ErrUnauthorized = errors.New("agent: relay refused the agent's name or token")
	// ErrAuthFailures is Run's error after ClientOptions.MaxAuthFailures
	// refusals of the token in a row.
	ErrAuthFailures = errors.New("agent: gave up: the relay kept refusing the token")
	// ErrBadConfig reports agents or agent destinations the server cannot
	// serve (an agent without a token, a destination naming an unknown
	// agent), or a client without a name or token.
	ErrBadConfig = errors.New("agent: bad config")
)
