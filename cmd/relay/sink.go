package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"
)

var helpSink = cmdHelp{
	name:    "sink",
	summary: "run a test receiver that prints every request it gets",
	usage:   []string{"relay sink [-listen ADDR] [-status CODE]"},
	notes: `Answers every request with -status and prints the request line, the status
it answered, every header (sorted) and the body. Point a destination's url at
it to watch Relay deliver; -status 410 plays a receiver that is gone.`,
	examples: []string{"relay sink", "relay sink -listen 127.0.0.1:9999 -status 410 > sink.log"},
}

// runSink runs a receiver that answers every request with -status and
// prints it, so a new user can watch Relay deliver without a real endpoint.
func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpSink, stderr)
	listen := fs.String("listen", "127.0.0.1:9999", "address to listen on")
	status := fs.Int("status", http.StatusOK, "status to answer with")
	if code, ok := parseNoArgs(fs, helpSink, args, stdout, stderr); !ok {
		return code
	}
	if *status < 100 || *status > 599 {
		return usageError(stderr, helpSink, fmt.Sprintf("-status %d is not an HTTP status", *status))
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "relay sink: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "relay sink: listening on http://%s, answering %d\n", ln.Addr(), *status)
	srv := &http.Server{Handler: sinkHandler(stdout, *status), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "relay sink: %v\n", err)
		return 1
	}
	return 0
}

// sinkHandler prints each request's method, path, the status it answers,
// every header and the body.
func sinkHandler(out io.Writer, status int) http.Handler {
	var mu sync.Mutex // one request's lines stay together
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		fmt.Fprintf(out, "%s %s %s -> %d\n", time.Now().Format(time.RFC3339), r.Method, r.URL.Path, status)
		names := make([]string, 0, len(r.Header))
		for h := range r.Header {
			names = append(names, h)
		}
		sort.Strings(names)
		for _, h := range names {
			for _, v := range r.Header[h] {
				fmt.Fprintf(out, "  %s: %s\n", h, v)
			}
		}
		fmt.Fprintf(out, "  body: %s\n", body)
		mu.Unlock()
		w.WriteHeader(status)
	})
}
