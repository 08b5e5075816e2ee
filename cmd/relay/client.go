package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/relaygw/relay/internal/redact"
)

// defaultAdminURL is where `relay serve` listens for the admin API unless
// admin.listen says otherwise.
const defaultAdminURL = "http://127.0.0.1:9090"

// errNotFound marks an admin API 404 (no such event or DLQ entry).
var errNotFound = errors.New("not found")

// adminClient talks to a running relay's admin API with the token from
// $RELAY_ADMIN_TOKEN.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// adminFlags adds -admin to fs and returns a function that builds the client
// once fs is parsed.
func adminFlags(fs *flag.FlagSet) func() (*adminClient, error) {
	def := defaultAdminURL
	if env := os.Getenv("RELAY_ADMIN_URL"); env != "" {
		def = env
	}
	raw := fs.String("admin", def, "admin API base URL of the running relay ($RELAY_ADMIN_URL); token from $RELAY_ADMIN_TOKEN")
	return func() (*adminClient, error) {
		u, err := url.Parse(strings.TrimRight(*raw, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bad -admin %q: want a URL like %s", redact.String(*raw), defaultAdminURL)
		}
		return &adminClient{base: u, token: os.Getenv("RELAY_ADMIN_TOKEN"), http: &http.Client{Timeout: 60 * time.Second}}, nil
	}
}

// do sends one request and decodes a 2xx JSON answer into out (if not nil).
// Errors say what to do: start the relay, fix the token, check the id.
func (c *adminClient) do(ctx context.Context, method, path string, query url.Values, out any) (http.Header, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the relay's admin API at %s (is `relay serve` running there? pass -admin URL): %w", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				return nil, fmt.Errorf("%s %s: unexpected answer (is %s a relay admin API?): %w", method, path, c.base, err)
			}
		}
		return resp.Header, nil
	}
	var e struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if c.token == "" {
			return nil, errors.New("the admin API wants a token: set $RELAY_ADMIN_TOKEN to the running relay's admin.token")
		}
		return nil, errors.New("the admin API refused the token in $RELAY_ADMIN_TOKEN: it must equal the running relay's admin.token")
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		if !c.isAdmin(ctx) {
			return nil, fmt.Errorf("%s is not a relay admin API (it has no /healthz): is it the ingest listener? -admin takes the admin listener's URL, admin.listen in the config (default %s)", c.base, defaultAdminURL)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %s", errNotFound, e.Error)
		}
	}
	msg := fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	for _, p := range e.Problems {
		msg += "\n  " + p
	}
	return nil, errors.New(msg)
}

// isAdmin reports whether c.base answers /healthz as the admin listener
// does: a 404 from anything else (the ingest listener, most often) must not
// read as "no such event".
func (c *adminClient) isAdmin(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// hoistAdmin lets -admin come before the subcommand too: `relay dlq -admin
// URL list` becomes `list -admin URL`. Other leading arguments are left as
// they are, for the subcommand switch to refuse.
func hoistAdmin(args []string) []string {
	var flags []string
	for len(args) > 0 {
		a := args[0]
		switch {
		case (a == "-admin" || a == "--admin") && len(args) > 1:
			flags, args = append(flags, a, args[1]), args[2:]
		case strings.HasPrefix(a, "-admin=") || strings.HasPrefix(a, "--admin="):
			flags, args = append(flags, a), args[1:]
		default:
			if len(flags) == 0 || len(args) == 0 {
				return append(flags, args...)
			}
			return append(append([]string{args[0]}, flags...), args[1:]...)
		}
	}
	return flags
}

// unwrapURL drops the "Get \"url\": " that net/http puts before the cause;
// the message already names the URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// isTerminal reports whether w is a terminal (a character device), where a
// progress bar makes sense; pipes and files get plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// listAll follows X-Next-Cursor from path and appends every item to out,
// stopping after limit items when limit > 0.
func listAll[T any](ctx context.Context, c *adminClient, path string, q url.Values, limit int) ([]T, error) {
	var all []T
	q.Set("limit", "1000")
	for {
		var page []T
		h, err := c.do(ctx, http.MethodGet, path, q, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if limit > 0 && len(all) >= limit {
			return all[:limit], nil
		}
		next := h.Get("X-Next-Cursor")
		if next == "" {
			return all, nil
		}
		q.Set("cursor", next)
	}
}
