package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

var helpHealth = cmdHelp{
	name:    "health",
	summary: "exit 0 when a running relay is ready, 1 when not (container health checks)",
	usage:   []string{"relay health [-admin URL] [-wait DURATION]"},
	notes: `Asks the admin listener's /readyz, which needs no token: ready means the
store answers and the relay is not draining. -wait keeps asking until the
relay is ready or the time is up. -admin defaults to $RELAY_ADMIN_URL, else
` + defaultAdminURL + `.`,
	examples: []string{"relay health", "relay health -wait 10s", "relay health -admin http://127.0.0.1:9191"},
}

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpHealth, stderr)
	client := adminFlags(fs)
	wait := fs.Duration("wait", 0, "keep asking until ready or this long has passed")
	if code, ok := parseNoArgs(fs, helpHealth, args, stdout, stderr); !ok {
		return code
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "health", err, 2)
	}
	deadline := time.Now().Add(*wait)
	for {
		why := ready(ctx, c)
		if why == "" {
			fmt.Fprintln(stdout, "ready")
			return 0
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			fmt.Fprintf(stderr, "relay health: not ready: %s\n", why)
			return 1
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// ready asks /readyz once and returns "" when ready, else why not.
func ready(ctx context.Context, c *adminClient) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/readyz", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Sprintf("cannot reach %s: %v", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return ""
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Sprintf("%s has no /readyz: is it the ingest listener? -admin takes the admin listener (admin.listen)", c.base)
	}
	return fmt.Sprintf("%s/readyz answered %s %s", c.base, resp.Status, trimBody(body))
}

func trimBody(b []byte) string {
	return shorten(string(b), 200)
}
