package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// runSink runs a receiver that answers every request with -status and
// prints it, so a new user can watch Relay deliver without a real endpoint.
func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9999", "address to listen on")
	status := fs.Int("status", http.StatusOK, "status to answer with")
	if err := fs.Parse(args); err != nil {
		return 2
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

// sinkHandler prints each request's method, path, Relay headers and body.
func sinkHandler(out io.Writer, status int) http.Handler {
	var mu sync.Mutex // one request's lines stay together
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		mu.Lock()
		fmt.Fprintf(out, "%s %s %s\n", time.Now().Format(time.RFC3339), r.Method, r.URL.Path)
		for _, h := range []string{"Content-Type", "Idempotency-Key", "X-Relay-Event-Id", "X-Relay-Webhook-Id", "X-Relay-Attempt", "Webhook-Id", "Webhook-Signature"} {
			if v := r.Header.Get(h); v != "" {
				fmt.Fprintf(out, "  %s: %s\n", h, v)
			}
		}
		fmt.Fprintf(out, "  body: %s\n", body)
		mu.Unlock()
		w.WriteHeader(status)
	})
}
