package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relaygw/relay/relay/admin"
)

// errDropped means the relay ended the stream because this reader fell
// behind; reconnecting resumes it (the items in between are lost).
var errDropped = errors.New("the relay dropped this stream: it fell behind")

// errReauth means a reload changed the relay's tokens; reconnecting checks
// the token again.
var errReauth = errors.New("the relay's tokens changed")

// runEventsTail runs `relay events tail`: it prints GET /api/tail's items
// as they arrive until interrupted, or until --count items.
func runEventsTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpEventsTail, stderr)
	client := adminFlags(fs)
	asJSON := fs.Bool("json", false, "print each item as a JSON line")
	dest := fs.String("destination", "", "only attempts to, and callbacks routed to, this destination")
	count := fs.Int("count", 0, "exit after N items (0: run until interrupted)")
	if code, ok := parseNoArgs(fs, helpEventsTail, args, stdout, stderr); !ok {
		return code
	}
	c, err := client()
	if err != nil {
		return fail(stderr, "events tail", err, 2)
	}
	// The stream stays open for as long as it runs: no overall timeout.
	c.http = &http.Client{}
	seen := 0
	show := func(it admin.TailItem) bool {
		if *dest != "" && it.Destination != *dest && !containsString(it.Destinations, *dest) {
			return true
		}
		if *asJSON {
			b, _ := json.Marshal(it)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintln(stdout, tailLine(it))
		}
		seen++
		return *count == 0 || seen < *count
	}
	for {
		err := c.tail(ctx, stderr, show)
		switch {
		case err == nil || ctx.Err() != nil:
			return 0
		case errors.Is(err, errDropped):
			fmt.Fprintln(stderr, "relay events tail: fell behind and was dropped by the relay; reconnecting (items in between are not shown)")
			continue
		case errors.Is(err, errReauth):
			fmt.Fprintln(stderr, "relay events tail: the relay's config reload changed its tokens; reconnecting")
			continue
		}
		return fail(stderr, "events tail", err, 1)
	}
}

// tail reads the stream until fn returns false (nil), the relay ends it
// (an error) or ctx ends.
func (c *adminClient) tail(ctx context.Context, stderr io.Writer, fn func(admin.TailItem) bool) error {
	u := *c.base
	u.Path += "/api/tail"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the relay's admin API at %s (is `relay serve` running there? pass -admin URL): %w", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Reuse do's messages for 401 and the rest.
		_, err := c.do(ctx, http.MethodGet, "/api/tail", nil, nil)
		if err == nil {
			err = fmt.Errorf("GET /api/tail: %s", resp.Status)
		}
		return err
	}
	fmt.Fprintf(stderr, "relay events tail: connected to %s; waiting for callbacks and deliveries (Ctrl-C stops)\n", c.base)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			event = ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			switch event {
			case "dropped":
				return errDropped
			case "reauth":
				return errReauth
			}
			var it admin.TailItem
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &it); err != nil {
				return fmt.Errorf("unexpected stream line %q: %w", line, err)
			}
			if !fn(it) {
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("the stream broke: %w", err)
	}
	return errors.New("the relay ended the stream (shutting down?)")
}

// tailLine is one item for a person: time, what, outcome, event, where.
func tailLine(it admin.TailItem) string {
	at := it.At.Local().Format("15:04:05.000")
	if it.Kind == admin.TailAttempt {
		s := fmt.Sprintf("%s  attempt   %-9s %s  %s #%d  %s  %s", at, it.Outcome, it.EventID, it.Destination, it.Attempt,
			statusText(it.Status), (time.Duration(it.DurationMS * float64(time.Millisecond))).Round(time.Millisecond))
		if it.Error != "" {
			s += "  " + shorten(it.Error, 100)
		}
		return s
	}
	to := "parked"
	if len(it.Destinations) > 0 {
		to = strings.Join(it.Destinations, ",")
	}
	return fmt.Sprintf("%s  callback  %-9s %s  webhook %s  mid %s -> %s", at, it.Outcome, it.EventID, it.WebhookID, orDash(it.DedupeKey), to)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
