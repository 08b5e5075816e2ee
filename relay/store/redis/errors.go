package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/redact"
	"github.com/relaygw/relay/relay/store"
)

// errBadCursor reports a page cursor that this backend did not hand out.
var errBadCursor = store.ErrBadCursor

// Script status codes shared by the Lua scripts.
const (
	codeOK      = 1
	codeLost    = 2
	codeMissing = 3
)

// transientReplies are the server replies that mean "not now" rather than
// "wrong request": a loading, read-only, busy or out-of-memory server.
var transientReplies = []string{
	"LOADING", "BUSY", "MASTERDOWN", "READONLY", "OOM", "TRYAGAIN",
	"CLUSTERDOWN", "NOREPLICAS", "MISCONF", "MAXCLIENTS",
	"ERR max number of clients",
}

// unavailable reports whether err means Redis cannot serve us right now:
// any error that is not a reply from the server (dial, I/O, timeout, pool
// exhausted), or a transient reply. A caller's own cancellation is not.
func unavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, errFormat) {
		return false
	}
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return true
	}
	for _, p := range transientReplies {
		if goredis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// redactURL rewrites err so that it shows neither raw nor its password.
func redactURL(err error, raw string) error {
	return errors.New(redact.Error(err, raw))
}
