package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/relaygw/relay/internal/gctune"
	"github.com/relaygw/relay/relay/agent"
)

// agentFlags are the flags of `relay agent`.
type agentFlags struct {
	server, token, name, ca string
	tokenFile               string
	receiverCA              string
	maxAuthFailures         int
	insecure                bool
	concurrency             int
	drain                   time.Duration
	level, format           string
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "the relay's URL, https://... (required)")
	fs.StringVar(&f.token, "token", "", "this agent's token on the command line, where ps shows it: prefer $RELAY_AGENT_TOKEN or -token-file")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding this agent's token from the relay's agents config (default: $RELAY_AGENT_TOKEN)")
	fs.IntVar(&f.maxAuthFailures, "max-auth-failures", 0, "exit with code 3 after N refusals of the token in a row (0: keep trying)")
	fs.StringVar(&f.name, "name", "", "this agent's name from the relay's agents config (required)")
	fs.StringVar(&f.ca, "ca", "", "PEM file of CA certificates to trust for the relay, besides the system's")
	fs.StringVar(&f.receiverCA, "receiver-ca", "", "PEM file of CA certificates to trust for the receivers this agent delivers to, besides the system's")
	fs.BoolVar(&f.insecure, "insecure", false, "allow a plain http:// server URL, for local testing only (TLS is never skipped)")
	fs.IntVar(&f.concurrency, "concurrency", agent.DefaultConcurrency, "deliveries attempted at once")
	fs.DurationVar(&f.drain, "drain-timeout", agent.DefaultDrainTimeout, "on SIGTERM, how long running attempts may finish")
	fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.format, "log-format", "text", "log format: text or json")
}

var helpAgent = cmdHelp{
	name:    "agent",
	summary: "deliver from inside a private network: dial out to the relay, POST to private URLs",
	usage:   []string{"relay agent -server URL -name NAME [-token-file FILE] [-ca FILE] [-insecure]"},
	notes: `The token is the one of agents[].name in the relay's config: set
$RELAY_AGENT_TOKEN or pass -token-file FILE, so it never shows in ps. When the
relay refuses the token, the agent retries with backoff (up to about a
minute); -max-auth-failures N makes it exit with code 3 after N refusals in a
row. -insecure allows a plain http:// server, for local testing only.`,
	examples: []string{
		"RELAY_AGENT_TOKEN=... relay agent -server https://relay.example.com -name office-1",
		"relay agent -server https://relay.example.com -name office-1 -token-file /etc/relay/agent.token",
	},
}

// runAgent runs the behind-the-firewall agent until SIGINT or SIGTERM.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(helpAgent, stderr)
	var f agentFlags
	f.register(fs)
	if code, ok := parseNoArgs(fs, helpAgent, args, stdout, stderr); !ok {
		return code
	}
	gctune.Apply(os.Getenv)
	token, source, err := agentToken(f)
	if err != nil {
		fmt.Fprintf(stderr, "relay agent: %v\n", err)
		return 2
	}
	if f.server == "" || f.name == "" || token == "" {
		return usageError(stderr, helpAgent, "-server, -name and a token ($RELAY_AGENT_TOKEN or -token-file FILE) are required")
	}
	log, err := newLogger(stderr, f.level, f.format)
	if err != nil {
		fmt.Fprintf(stderr, "relay agent: %v\n", err)
		return 2
	}
	opts := agent.ClientOptions{
		Server:          f.server,
		Name:            f.name,
		Token:           token,
		TokenSource:     source,
		MaxAuthFailures: f.maxAuthFailures,
		Insecure:        f.insecure,
		Concurrency:     f.concurrency,
		DrainTimeout:    f.drain,
		Logger:          log,
		Version:         currentVersion().Version,
	}
	if f.ca != "" {
		if opts.RootCAs, err = agent.LoadCA(f.ca); err != nil {
			fmt.Fprintf(stderr, "relay agent: %v\n", err)
			return 1
		}
	}
	if f.receiverCA != "" {
		if opts.ReceiverCAs, err = agent.LoadCA(f.receiverCA); err != nil {
			fmt.Fprintf(stderr, "relay agent: -receiver-ca: %v\n", err)
			return 1
		}
	}
	c, err := agent.NewClient(opts)
	if err != nil {
		fmt.Fprintf(stderr, "relay agent: %v\n", err)
		if errors.Is(err, agent.ErrServerURL) || errors.Is(err, agent.ErrBadConfig) {
			return 2
		}
		return 1
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := c.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "relay %v\n", err) // err starts with "agent: "
		if errors.Is(err, agent.ErrAuthFailures) {
			return 3
		}
		return 1
	}
	return 0
}

// agentToken picks the token: -token-file, then -token, then
// $RELAY_AGENT_TOKEN, and says where it came from for the refusal message.
func agentToken(f agentFlags) (token, source string, err error) {
	switch {
	case f.tokenFile != "" && f.token != "":
		return "", "", errors.New("pass -token-file or -token, not both")
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", "", fmt.Errorf("-token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", "", fmt.Errorf("-token-file %s is empty", f.tokenFile)
		}
		return t, "the token in -token-file " + f.tokenFile, nil
	case f.token != "":
		return f.token, "the token of -token", nil
	}
	return os.Getenv("RELAY_AGENT_TOKEN"), "the token in $RELAY_AGENT_TOKEN", nil
}
