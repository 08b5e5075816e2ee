package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// RouteClientLogs sends the go-redis client's own log lines to log, which
// otherwise go to stderr as plain text beside Relay's structured lines.
// go-redis keeps one logger for the whole process, so the program calls
// this once, before opening a Store; it is not an Option of Open.
//
// A failed dial logs at debug: go-redis logs one per failed connection
// attempt, and the Store's callers already log when Redis stops answering
// and when it answers again. Every other line logs at warn.
func RouteClientLogs(log *slog.Logger) { goredis.SetLogger(clientLog{log}) }

// clientLog is the go-redis logger that RouteClientLogs installs.
type clientLog struct{ log *slog.Logger }

// dialFailed starts go-redis's line for a connection that could not be made.
const dialFailed = "connection pool: failed to dial"

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, dialFailed) {
		level = slog.LevelDebug
	}
	c.log.Log(ctx, level, "redis client: "+msg, "component", "go-redis")
}
