package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// Options configures Open.
type Options struct {
	// URL is a redis:// or rediss:// URL; its query may set go-redis options
	// such as dial_timeout or read_timeout.
	URL string
	// Prefix is prepended to every key (config.DefaultRedisPrefix when
	// empty). Processes sharing a prefix share the queues.
	Prefix string
	// Retention is how long an event whose deliveries are all delivered is
	// kept (config.DefaultRedisRetention when zero).
	Retention time.Duration
	// PoolSize is the maximum number of connections (go-redis default, ten
	// per CPU, when zero).
	PoolSize int
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt and socket read or write; zero keeps the URL's value or the
	// go-redis default (5s).
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Cluster reads URL as a Redis Cluster seed (more seeds as addr
	// parameters). With one partition every key is in the slot of the
	// prefix's hash tag ("{relay:}" for "relay:").
	Cluster bool
	// Partitions is how many partitions the events and their deliveries
	// are spread over (partition.go); zero means
	// config.DefaultRedisPartitions, or config.DefaultRedisClusterPartitions
	// with Cluster. It cannot change for existing data (format.go).
	Partitions int
	// Clock stands in for a zero due time of Retry and Release (clock.Real
	// when nil). Due times and leases run on the Redis server's TIME.
	Clock clock.Clock
}

// Store is a store.Store kept in Redis. It is safe for concurrent use, and
// several Stores, in one process or many, may share one Redis and prefix.
type Store struct {
	rdb       goredis.UniversalClient
	sc        *scripts
	prefix    string  // the keys' prefix; with several partitions, each has its own under it
	parts     []*part // the partitions, by number (partition.go)
	format    string  // the format marker's value (format.go)
	spans     bool    // several partitions on one Redis: a script may touch them all
	retention time.Duration
	log       *slog.Logger
	clock     clock.Clock
	closed    atomic.Bool
	formatOK  atomic.Bool // the format marker was checked (format.go)
	health    store.WriteHealth
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.WriteChecker = (*Store)(nil)
)

// Open connects to Redis and loads the scripts. When Redis cannot be
// reached, Open still returns the Store, logging a warning: every call then
// fails with store.ErrUnavailable until Redis answers. Any other error, a
// wrong password for one, fails Open.
func Open(ctx context.Context, opts Options) (*Store, error) {
	ro, co, err := parseURL(opts)
	if err != nil {
		return nil, fmt.Errorf("redis: open: parse url: %w", redactURL(err, opts.URL))
	}
	if opts.PoolSize > 0 {
		ro.PoolSize = opts.PoolSize
	}
	if opts.DialTimeout > 0 {
		ro.DialTimeout = opts.DialTimeout
	}
	if opts.ReadTimeout > 0 {
		ro.ReadTimeout = opts.ReadTimeout
	}
	if opts.WriteTimeout > 0 {
		ro.WriteTimeout = opts.WriteTimeout
	}
	// go-redis already retries a failed command a few times with backoff;
	// retrying each dial inside that loop as well only delays the
	// ErrUnavailable that ingest turns into a 503.
	ro.DialerRetries = 1
	// One retry, not go-redis's three with backoff: it still covers a
	// pooled connection that Redis closed (a restart), while a Redis that
	// refuses connections now costs a callback ~10 ms before its 503
	// instead of 110-200 ms (docs/benchmarks.md, outages).
	if !urlSets(opts.URL, "max_retries") {
		ro.MaxRetries = 1
	}
	ro.ContextTimeoutEnabled = true
	ro.DisableIdentity = true

	s := &Store{
		rdb:       newClient(ro, co),
		prefix:    opts.Prefix,
		retention: opts.Retention,
		log:       opts.Logger,
		clock:     clock.Or(opts.Clock),
	}
	if s.prefix == "" {
		s.prefix = config.DefaultRedisPrefix
	}
	n := opts.Partitions
	if n <= 0 {
		n = config.DefaultRedisPartitions
		if opts.Cluster {
			n = config.DefaultRedisClusterPartitions
		}
	}
	if opts.Cluster && n > 1 && hashTag(s.prefix) {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redis: open: prefix %q holds a hash tag, which would put all %d partitions in one slot of the cluster: "+
			"leave the braces out of store.redis.prefix", s.prefix, n)
	}
	if opts.Cluster && n == 1 {
		s.prefix = clusterPrefix(s.prefix)
	}
	s.format = formatValue(n)
	s.spans = n > 1 && !opts.Cluster
	if s.sc, err = newScripts(s.format); err != nil {
		_ = s.rdb.Close()
		return nil, fmt.Errorf("redis: open: %w", err)
	}
	s.parts = make([]*part, n)
	for i := range s.parts {
		pt := &part{n: i, prefix: partPrefix(s.prefix, i, n)}
		if opts.Cluster {
			pt.route = []string{pt.prefix}
		}
		pt.accepts = batcher[*acceptReq]{send: func(ctx context.Context, b []*acceptReq) { s.acceptBatch(ctx, pt, b) },
			fail: s.fail, maxCalls: maxAcceptCalls}
		pt.outcomes = batcher[*outcomeReq]{send: func(ctx context.Context, b []*outcomeReq) { s.outcomeBatch(ctx, pt, b) },
			fail: s.fail, maxCalls: maxOutcomeCalls}
		s.parts[i] = pt
	}
	if s.retention <= 0 {
		s.retention = config.DefaultRedisRetention
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	err = s.load(ctx)
	if err == nil {
		err = s.ready(ctx)
	}
	if err != nil {
		err = s.fail("open", err)
		if !errors.Is(err, store.ErrUnavailable) {
			_ = s.rdb.Close()
			return nil, err
		}
		// Redis may come up after the relay (a host booting, a rollout),
		// and a relay that refused to start would be restarted in a loop.
		// The Store works as during any outage instead: calls fail with
		// ErrUnavailable until Redis answers, Script.Run loads each script
		// on its first call after that, and that call checks the format.
		s.log.Warn("redis store: Redis does not answer at start; calls fail as unavailable until it does",
			"addr", ro.Addr, "store_error", err)
		return s, nil
	}
	s.log.Debug("redis store open", "addr", ro.Addr, "db", ro.DB, "prefix", s.prefix, "partitions", n)
	return s, nil
}

// urlSets reports whether the URL's query sets key.
func urlSets(raw, key string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Query().Has(key)
}

// load loads every script into the server's script cache, so the first
// calls are EVALSHA hits. After a Redis restart the cache is empty again;
// go-redis then falls back to EVAL once per script.
func (s *Store) load(ctx context.Context) error {
	// Not pipelined: Script.Load keeps the digest the server returns, and a
	// pipelined command has no value yet when Load reads it.
	for _, sc := range s.sc.all() {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.fail("ping", err)
	}
	if err := s.ready(ctx); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// CheckWrite returns nil while the last write succeeded; after a refused
// one (Redis down or frozen, or answering reads but refusing writes:
// MISCONF, OOM, READONLY, NOREPLICAS) it writes a small probe key and
// returns the outcome.
func (s *Store) CheckWrite(ctx context.Context) error {
	return s.health.Check(ctx, func(ctx context.Context) error {
		if err := s.check(); err != nil {
			return fmt.Errorf("redis: probe write: %w", err)
		}
		if err := s.ready(ctx); err != nil {
			return s.fail("probe write", err)
		}
		if err := s.rdb.Set(ctx, s.prefix+"probe", s.clock.Now().UnixMilli(), time.Minute).Err(); err != nil {
			return s.fail("probe write", err)
		}
		return nil
	})
}

// WriteErrors counts the writes refused since Open, one per caller of a
// refused call.
func (s *Store) WriteErrors() int64 { return s.health.Errors() }

// wrote records a write's outcome for CheckWrite: a success, or a refusal
// that means Redis cannot write now. A script's own error is no refusal.
func (s *Store) wrote(err error, n int) {
	if err != nil && !unavailable(err) {
		return
	}
	s.health.Record(err, n)
}

// Close closes the connection pool. Calls after Close return store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.rdb.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// check refuses calls on a closed store.
func (s *Store) check() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// run runs a script in partition pt, with its prefix as ARGV[1].
func (s *Store) run(ctx context.Context, pt *part, sc *goredis.Script, args ...any) (any, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	return sc.Run(ctx, s.rdb, pt.route, append([]any{pt.prefix}, args...)...).Result()
}

// fail wraps a Redis error for op, marking connection trouble as
// store.ErrUnavailable.
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, store.ErrClosed), errors.Is(err, goredis.ErrClosed):
		return fmt.Errorf("redis: %s: %w", op, store.ErrClosed)
	case goredis.HasErrorPrefix(err, formatReply):
		// The accept script found another format's marker: calls check
		// the marker again, as at Open.
		s.formatOK.Store(false)
		var reply goredis.Error
		errors.As(err, &reply)
		_, found, _ := strings.Cut(reply.Error(), formatReply+" ")
		return fmt.Errorf("redis: %s: %w", op, s.formatErr(found))
	case unavailable(err):
		return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
	default:
		return fmt.Errorf("redis: %s: %w", op, err)
	}
}
