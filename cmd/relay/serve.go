package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/gctune"
	"github.com/relaygw/relay/relay"
	redisstore "github.com/relaygw/relay/relay/store/redis"
)

var helpServe = cmdHelp{
	name:    "serve",
	summary: "run the relay: the ingest listener, delivery workers and the admin API",
	usage:   []string{"relay serve [-config FILE] [-listen ADDR] [-admin-listen ADDR] [-log-level L] [-log-format F]"},
	notes: `FILE defaults to $RELAY_CONFIG, then relay.yaml. -listen and -admin-listen
(or $RELAY_LISTEN and $RELAY_ADMIN_LISTEN) replace the file's listen and
admin.listen; -log-level and -log-format replace log.level and log.format.
SIGHUP reloads the file; SIGTERM or SIGINT drains, then exits 0.`,
	examples: []string{
		"relay serve -config relay.example.yaml",
		"relay serve -listen 127.0.0.1:8081 -admin-listen 127.0.0.1:9191",
		"RELAY_CONFIG=/etc/relay/relay.yaml relay serve -log-format json",
	},
}

// runServe runs the proxy until SIGINT or SIGTERM, then drains and exits 0;
// a second signal during the drain ends the process at once. SIGHUP reloads
// the config file (a bad file is logged and the running config stays).
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpServe, stderr)
	file := fs.String("config", "", "config file (default $RELAY_CONFIG, then relay.yaml)")
	listen := fs.String("listen", os.Getenv("RELAY_LISTEN"), "ingest listener host:port, replacing the file's listen ($RELAY_LISTEN)")
	adminListen := fs.String("admin-listen", os.Getenv("RELAY_ADMIN_LISTEN"), "admin listener host:port, replacing admin.listen ($RELAY_ADMIN_LISTEN)")
	level := fs.String("log-level", "", "log level: debug, info, warn, error (default: log.level, else info)")
	format := fs.String("log-format", "", "log format: text or json (default: log.format, else text)")
	drain := fs.Duration("drain-timeout", config.DefaultDrainTimeout, "on SIGTERM, how long in-flight deliveries may run before they are released back to the queue")
	pos, code, ok := parseArgs(fs, helpServe, args, stdout, stderr)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, helpServe, fmt.Sprintf("unexpected argument %q (the config file goes after -config)", pos[0]))
	}
	gctune.Apply(os.Getenv)
	path := configPath(*file)
	opts := config.Options{Listen: *listen, AdminListen: *adminListen}
	cfg, err := config.LoadFileWith(path, opts)
	if err != nil {
		printProblems(stderr, "serve", path, err)
		return 1
	}
	log, err := newLogger(stderr, firstOf(*level, cfg.Log.Level), firstOf(*format, cfg.Log.Format))
	if err != nil {
		fmt.Fprintf(stderr, "relay serve: %v\n", err)
		return 2
	}
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.Error())
	}
	if cfg.Store.Redis != nil {
		redisstore.RouteClientLogs(log)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Caught from the start: SIGHUP's default is to end the process, and
	// opening a large store takes a while. One that comes meanwhile
	// reloads once the relay runs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	srv, err := relay.New(ctx, cfg, relay.Options{
		Logger: log, Version: currentVersion().Version, ShutdownTimeout: *drain,
		Load: func(path string) (*config.Config, error) { return config.LoadFileWith(path, opts) },
	})
	if errors.Is(err, relay.ErrStoppedOpening) {
		log.Info("relay: stopped before the store was open")
		return 0
	}
	if err != nil {
		log.Error("relay: cannot start", "err", err)
		return 1
	}
	go func() {
		<-ctx.Done()
		stop() // from now on a second SIGINT or SIGTERM kills the process
	}()
	stopHUP := reloadOnHUP(ctx, hup, srv, log)
	defer stopHUP()
	if err := srv.Run(ctx); err != nil {
		log.Error("relay: stopped with error", "err", err)
		return 1
	}
	return 0
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// reloadOnHUP reloads the config on every SIGHUP from hup until ctx ends.
// Reload logs the outcome, every problem of a refused file included.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, srv *relay.Server, log *slog.Logger) (stop func()) {
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
		close(quit)
		<-done
	}
}

// printProblems prints a config error one problem per line; a missing
// file gets a pointer to -config and the example.
func printProblems(w io.Writer, cmd, path string, err error) {
	var problems config.Errors
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			fmt.Fprintln(w, p.Error())
		}
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(w, "relay %s: no config file %s: pass -config FILE or set $RELAY_CONFIG, or start from the example: cp relay.example.yaml relay.yaml\n", cmd, path)
	default:
		fmt.Fprintf(w, "%s: %v\n", path, err)
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q (debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad log format %q (text or json)", format)
}
