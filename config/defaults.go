package config

import "time"

// Defaults for keys the file leaves out. A zero value in a Config means
// "unset" and is replaced by these in SetDefaults. This is their one home:
// code under relay/ and cmd/ reads the filled Config, and the few library
// options that still fall back when left zero (deliver.Options,
// ingest.Settings, agent.ServerOptions, the stores' options) name these
// constants. TestNoSecondHome fails on a Default* declared elsewhere with
// a value of its own.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultAdminListen  = "127.0.0.1:9090"
	DefaultEmbeddedPath = "./relay-data"
	// DefaultEmbeddedRetention matches the Redis store's.
	DefaultEmbeddedRetention = 72 * time.Hour
	DefaultRedisPrefix       = "relay:"
	DefaultRedisRetention    = 72 * time.Hour
	// DefaultRedisPartitions and DefaultRedisClusterPartitions are
	// store.redis.partitions on one Redis and with cluster: true. The
	// number cannot change for existing data; 16 spreads over a cluster of
	// up to a dozen masters or so (README, Redis Cluster).
	DefaultRedisPartitions        = 1
	DefaultRedisClusterPartitions = 16
	// MaxRedisPartitions bounds store.redis.partitions: a lease reads
	// every partition's queue.
	MaxRedisPartitions     = 1024
	DefaultMaxBodyBytes    = 1 << 20
	DefaultResponseStatus  = 202
	DefaultUnmatched       = UnmatchedPark
	DefaultDedupeField     = "mid"
	DefaultDedupeTTL       = 24 * time.Hour
	DefaultPollInterval    = 500 * time.Millisecond
	DefaultLeaseMargin     = 30 * time.Second
	DefaultTimeout         = 10 * time.Second
	DefaultMaxAttempts     = 12
	DefaultInitialInterval = time.Second
	DefaultMaxInterval     = time.Hour
	DefaultMaxAge          = 72 * time.Hour
	DefaultConcurrency     = 4
	DefaultCircuitFailures = 10
	DefaultCircuitCooldown = 5 * time.Minute
	// DefaultCircuitFirstCooldown is the first cooldown after the circuit
	// opens; each failed probe doubles it, up to circuit.cooldown.
	DefaultCircuitFirstCooldown = 5 * time.Second
	DefaultWriteTimeout         = 2 * time.Second
	DefaultLease                = 15 * time.Second
	// DefaultParkedTTL is how long a parked event waits for a replay.
	DefaultParkedTTL = 168 * time.Hour
	// DefaultMaxConcurrent and DefaultMaxInflightBytes bound what callbacks
	// in progress can hold: 64 default-sized bodies at most, whatever the
	// number of connections. 1024 callbacks ride out a store stall of about
	// 90 ms at 11,000/s without a 503 (docs/security.md, "The memory bound").
	DefaultMaxConcurrent    = 1024
	DefaultMaxInflightBytes = 64 << 20
	DefaultHMACAlgorithm    = "sha256"
	DefaultHMACEncoding     = "hex"
	// DefaultWebhookTolerance is the Standard Webhooks libraries' window.
	DefaultWebhookTolerance = 5 * time.Minute
	DefaultLogLevel         = "info"
	DefaultLogFormat        = LogText
	DefaultLogSample        = 1.0
	// DefaultDrainTimeout is the default of relay serve's and relay
	// agent's -drain-timeout: how long running attempts may finish on
	// SIGTERM. It is a flag, not a key, but has its home here all the same.
	DefaultDrainTimeout = 10 * time.Second
)

// Failed authentications a source address may make at the admin API and
// the agent protocol before it is answered 429 unheard: a burst, then one
// more each DefaultAuthFailureEvery. At most DefaultAuthFailureSources
// addresses are remembered.
const (
	DefaultAuthFailureBurst   = 10
	DefaultAuthFailureEvery   = 6 * time.Second
	DefaultAuthFailureSources = 10_000
	// MinAgentTokenBytes is the shortest agent token the config accepts.
	MinAgentTokenBytes = 16
	// MinIngestTokenBytes is the shortest ingest auth token it accepts:
	// ingest does not throttle failed tokens, so a short one could be
	// guessed at the listener's rate.
	MinIngestTokenBytes = 16
)

// SetDefaults fills every unset (zero) field with its default. It is the one
// place the defaults of config keys are applied; Load calls it before
// validating, and code that builds a Config by hand should call it too.
// Defaults of options that are no config key (agent's DefaultPollWait, the
// stores' batch sizes and sweep intervals) live with their package.
//
// Two zero values are meaningful and kept apart: Dedupe.Fields nil (key
// absent) becomes [mid] while an empty non-nil slice (fields: []) turns
// dedupe off; and an empty Destination.SuccessStatus stays empty, meaning
// "any 2xx". A Store with neither backend becomes the embedded store at
// ./relay-data (Load refuses a "store" key that names neither, before this
// runs). RateLimit 0 means no limit and needs no default. A destination
// with a retry.schedule and no max_attempts gets one attempt more than the
// schedule has entries, so every listed wait is used once.
func (c *Config) SetDefaults() {
	setString(&c.Listen, DefaultListen)
	setString(&c.Admin.Listen, DefaultAdminListen)
	if c.Store.Embedded == nil && c.Store.Redis == nil {
		c.Store.Embedded = &EmbeddedStore{Path: DefaultEmbeddedPath}
	}
	if e := c.Store.Embedded; e != nil {
		setDuration(&e.Retention, DefaultEmbeddedRetention)
	}
	if r := c.Store.Redis; r != nil {
		setString(&r.Prefix, DefaultRedisPrefix)
		setDuration(&r.Retention, DefaultRedisRetention)
		if r.Cluster {
			setInt(&r.Partitions, DefaultRedisClusterPartitions)
		}
		setInt(&r.Partitions, DefaultRedisPartitions)
	}
	setDuration(&c.Store.WriteTimeout, DefaultWriteTimeout)
	if c.Ingest.MaxBodyBytes == 0 {
		c.Ingest.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setInt(&c.Ingest.ResponseStatus, DefaultResponseStatus)
	setString(&c.Ingest.Unmatched, DefaultUnmatched)
	setDuration(&c.Ingest.ParkedTTL, DefaultParkedTTL)
	setInt(&c.Ingest.MaxConcurrent, DefaultMaxConcurrent)
	if c.Ingest.MaxInflightBytes == 0 {
		c.Ingest.MaxInflightBytes = DefaultMaxInflightBytes
	}
	c.Ingest.Auth.setDefaults()
	for i := range c.Routes {
		c.Routes[i].Auth.setDefaults()
	}
	if c.Dedupe.Fields == nil {
		c.Dedupe.Fields = []string{DefaultDedupeField}
	}
	setDuration(&c.Dedupe.TTL, DefaultDedupeTTL)
	setDuration(&c.Delivery.PollInterval, DefaultPollInterval)
	setDuration(&c.Delivery.LeaseMargin, DefaultLeaseMargin)
	setDuration(&c.Delivery.Lease, DefaultLease)
	for i := range c.Destinations {
		c.Destinations[i].SetDefaults()
	}
	setString(&c.Log.Level, DefaultLogLevel)
	setString(&c.Log.Format, DefaultLogFormat)
	if c.Log.Sample == nil {
		s := DefaultLogSample
		c.Log.Sample = &s
	}
}

// SetDefaults fills d's unset fields, as Config.SetDefaults does for each
// destination. deliver calls it on a destination built by hand (in tests),
// so that it has no defaults of its own; on a loaded one it changes nothing.
func (d *Destination) SetDefaults() {
	setDuration(&d.Timeout, DefaultTimeout)
	if len(d.Retry.Schedule) > 0 {
		setInt(&d.Retry.MaxAttempts, len(d.Retry.Schedule)+1)
	}
	setInt(&d.Retry.MaxAttempts, DefaultMaxAttempts)
	setDuration(&d.Retry.InitialInterval, DefaultInitialInterval)
	setDuration(&d.Retry.MaxInterval, DefaultMaxInterval)
	setDuration(&d.Retry.MaxAge, DefaultMaxAge)
	setInt(&d.Concurrency, DefaultConcurrency)
	setInt(&d.Circuit.Failures, DefaultCircuitFailures)
	setDuration(&d.Circuit.Cooldown, DefaultCircuitCooldown)
	setDuration(&d.Circuit.FirstCooldown, min(DefaultCircuitFirstCooldown, d.Circuit.Cooldown.D()))
}

func (a *Auth) setDefaults() {
	if a == nil {
		return
	}
	if h := a.HMAC; h != nil {
		setString(&h.Algorithm, DefaultHMACAlgorithm)
		setString(&h.Encoding, DefaultHMACEncoding)
	}
	if sw := a.StandardWebhooks; sw != nil {
		setDuration(&sw.Tolerance, DefaultWebhookTolerance)
	}
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

func setDuration(p *Duration, def time.Duration) {
	if *p == 0 {
		*p = Duration(def)
	}
}

// Limits of every jq filter and transformation run (not configurable: a
// transform that needs more is doing a receiver's job).
const (
	// DefaultJQTimeout bounds one filter run or one transformation. A
	// typical one takes tens of microseconds; the margin is for a machine
	// so busy that the run waits for a CPU, since a transform that times
	// out is dead-lettered.
	DefaultJQTimeout = time.Second
	// DefaultJQMaxOutputBytes bounds a transformation's encoded body and
	// headers.
	DefaultJQMaxOutputBytes = 1 << 20
)
