package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/gctune"
	"github.com/relaygw/relay/relay"
	redisstore "github.com/relaygw/relay/relay/store/redis"
)

// runServe runs the proxy until SIGINT or SIGTERM, then drains and exits 0;
// a second signal during the drain ends the process at once. SIGHUP reloads
// the config file (a bad file is logged and the running config stays).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	drain := fs.Duration("drain-timeout", 10*time.Second, "on SIGTERM, how long in-flight deliveries may run before they are released back to the queue")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	gctune.Apply(os.Getenv)
	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintf(stderr, "relay serve: %v\n", err)
		return 2
	}
	path := configPath(*file)
	cfg, err := config.LoadFile(path)
	if err != nil {
		printProblems(stderr, path, err)
		return 1
	}
	if cfg.Store.Redis != nil {
		redisstore.RouteClientLogs(log)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := relay.New(ctx, cfg, relay.Options{Logger: log, Version: version, ShutdownTimeout: *drain})
	if err != nil {
		log.Error("relay: cannot start", "err", err)
		return 1
	}
	go func() {
		<-ctx.Done()
		stop() // from now on a second SIGINT or SIGTERM kills the process
	}()
	stopHUP := reloadOnHUP(ctx, srv, log)
	defer stopHUP()
	if err := srv.Run(ctx); err != nil {
		log.Error("relay: stopped with error", "err", err)
		return 1
	}
	return 0
}

// reloadOnHUP reloads the config on every SIGHUP until ctx ends. Reload
// logs the outcome, every problem of a refused file included.
func reloadOnHUP(ctx context.Context, srv *relay.Server, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-hup:
				log.Info("relay: SIGHUP: reloading the config")
				_, _ = srv.Reload(ctx)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(quit)
		<-done
	}
}

// printProblems prints a config error one problem per line.
func printProblems(w io.Writer, path string, err error) {
	var problems config.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(w, p.Error())
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q (text or json)", format)
}
