package redis

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestClientLogLevels(t *testing.T) {
	tests := []struct {
		format string
		args   []any
		want   string
	}{
		{
			"redis: connection pool: failed to dial after %d attempts: %v", []any{1, "connection refused"},
			`level=DEBUG msg="redis client: connection pool: failed to dial after 1 attempts: connection refused" component=go-redis`,
		},
		{
			"redis: %s: discarding bad connection: %v", []any{"pool", "EOF"},
			`level=WARN msg="redis client: pool: discarding bad connection: EOF" component=go-redis`,
		},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		})
		clientLog{slog.New(h)}.Printf(context.Background(), tt.format, tt.args...)
		if got := strings.TrimSpace(buf.String()); got != tt.want {
			t.Errorf("Printf(%q) logged\n%s\nwant\n%s", tt.format, got, tt.want)
		}
	}
}
