package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// seedBody is the provider's documented example callback (a copy of
// relay/testdata/seed.json, which a test keeps equal), trailing comma and all.
//
//go:embed seed.json
var seedBody []byte

// defaultIngestURL is where `relay serve` listens for callbacks unless
// listen says otherwise.
const defaultIngestURL = "http://127.0.0.1:8080"

var helpSend = cmdHelp{
	name:    "send",
	summary: "post a callback to a running relay, to try a route",
	usage:   []string{"relay send [-server URL] -webhook ID [-content-type T] [FILE | -]"},
	notes: `Posts FILE (- for stdin), or without one the provider's documented sample
callback, to URL/hooks/ID and prints the relay's answer. Exits 0 on a 2xx
answer, 1 otherwise. URL defaults to $RELAY_URL, else ` + defaultIngestURL + `.`,
	examples: []string{
		"relay send -webhook 1001",
		"relay send -webhook 1001 callback.json",
		`echo '{"mid":"m-1","status":"ANSWER"}' | relay send -webhook 1002 -`,
	},
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpSend, stderr)
	def := defaultIngestURL
	if env := os.Getenv("RELAY_URL"); env != "" {
		def = env
	}
	server := fs.String("server", def, "the relay's ingest URL ($RELAY_URL)")
	webhook := fs.String("webhook", "", "webhook_id to post to (required)")
	ctype := fs.String("content-type", "application/json", "Content-Type of the body")
	pos, code, ok := parseArgs(fs, helpSend, args, stdout, stderr)
	if !ok {
		return code
	}
	if *webhook == "" {
		return usageError(stderr, helpSend, "-webhook ID is required (a webhook_id of the relay's routes)")
	}
	if len(pos) > 1 {
		return usageError(stderr, helpSend, fmt.Sprintf("unexpected argument %q (one FILE at most)", pos[1]))
	}
	body := seedBody
	if len(pos) == 1 {
		var err error
		if pos[0] == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(pos[0])
		}
		if err != nil {
			return fail(stderr, "send", err, 1)
		}
	}
	base, err := url.Parse(strings.TrimRight(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usageError(stderr, helpSend, fmt.Sprintf("bad -server %q: want a URL like %s", *server, defaultIngestURL))
	}
	target := base.String() + "/hooks/" + url.PathEscape(*webhook)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fail(stderr, "send", err, 1)
	}
	req.Header.Set("Content-Type", *ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail(stderr, "send", fmt.Errorf("cannot reach the relay at %s (is `relay serve` running? pass -server URL): %w", base, unwrapURL(err)), 1)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, bytes.TrimSpace(answer))
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}
