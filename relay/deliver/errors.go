package deliver

import "errors"

// Sentinel errors. Attempt errors are recorded in the store as text; these
// let callers and tests branch on the kind.
var (
	// ErrBadDestination reports a destination that cannot be dispatched
	// (no URL, a bad URL, a duplicate name).
	ErrBadDestination = errors.New("deliver: bad destination")
	// ErrBadSecret reports a signing_secret that cannot be used as a key.
	ErrBadSecret = errors.New("deliver: bad signing secret")
	// ErrStatus reports a response whose status is not a success.
	ErrStatus = errors.New("deliver: unsuccessful status")
	// ErrRedirect reports a 3xx response that was not followed: redirects
	// are not followed unless follow_redirects is set (a relay that followed
	// them would send the body and signature wherever the receiver points),
	// and even then not a 303, another scheme, or a sixth hop.
	ErrRedirect = errors.New("deliver: redirect not followed")
	// ErrRedirectRefused reports a redirect that leads to one of the relay's
	// own listeners, or to a non-public address from a destination on a
	// public one (see guard.go). It is final: the receiver will send the
	// same redirect again.
	ErrRedirectRefused = errors.New("deliver: redirect refused")
	// ErrNoEvent reports a leased delivery without its event (the store lost
	// or pruned the body), which no retry can fix.
	ErrNoEvent = errors.New("deliver: event body missing")
)
