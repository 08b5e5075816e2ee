package config

import "time"

// Config is the whole relay configuration as read from YAML.
type Config struct {
	Listen       string        `yaml:"listen"`
	Admin        Admin         `yaml:"admin"`
	Store        Store         `yaml:"store"`
	Ingest       Ingest        `yaml:"ingest"`
	Dedupe       Dedupe        `yaml:"dedupe"`
	Delivery     Delivery      `yaml:"delivery"`
	Routes       []Route       `yaml:"routes"`
	Destinations []Destination `yaml:"destinations"`
	Agents       []Agent       `yaml:"agents"`
	Portals      []Portal      `yaml:"portals"`
	Log          Log           `yaml:"log"`

	// File is the path the config was loaded from ("" for Load from bytes).
	File string `yaml:"-"`
	// Warnings are problems that do not stop the config from loading: each
	// ${VAR} that is unset and has no default.
	Warnings Errors `yaml:"-"`
}

// Admin configures the admin listener.
type Admin struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"token"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener, behind admin.token (which it requires).
	Pprof bool `yaml:"pprof"`
	// MetricsAuth requires admin.token on /metrics, which otherwise needs
	// none (Prometheus scrapes it): portal clients, who reach the admin
	// listener for their console, then cannot read every destination's
	// counters there.
	MetricsAuth bool `yaml:"metrics_auth"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed when
	// counting failed admin authentications per client: behind a reverse
	// proxy, every client would otherwise be the proxy.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Store selects exactly one backend.
type Store struct {
	Embedded *EmbeddedStore `yaml:"embedded"`
	Redis    *RedisStore    `yaml:"redis"`
	// WriteTimeout bounds how long ingest waits for the store to take a
	// callback; past it the provider gets a 503 with Retry-After.
	WriteTimeout Duration `yaml:"write_timeout"`
}

// EmbeddedStore configures the bbolt store.
type EmbeddedStore struct {
	Path string `yaml:"path"`
	// Retention is how long an event is kept once every delivery of it is
	// delivered or deleted from the DLQ.
	Retention Duration `yaml:"retention"`
}

// RedisStore configures the Redis store.
type RedisStore struct {
	URL       string   `yaml:"url"`
	Prefix    string   `yaml:"prefix"`
	Retention Duration `yaml:"retention"`
	// Cluster reads URL as one seed of a Redis Cluster (more seeds as
	// ?addr=host:port parameters).
	Cluster bool `yaml:"cluster"`
	// Partitions is how many partitions events and their deliveries are
	// spread over, each in one hash slot of a cluster; fixed for the
	// data once written.
	Partitions int `yaml:"partitions"`
}

// Ingest configures the provider-facing listener.
type Ingest struct {
	MaxBodyBytes   int64  `yaml:"max_body_bytes"`
	ResponseStatus int    `yaml:"response_status"`
	Unmatched      string `yaml:"unmatched"` // "park" or "reject"

	// Auth verifies every callback whose webhook_id has no route auth.
	Auth *Auth `yaml:"auth"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed when
	// deciding a callback's client IP (allow_ips, rate_limit).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// RateLimit is callbacks per second per client IP; 0 means no limit.
	RateLimit float64 `yaml:"rate_limit"`
	// ParkedTTL is how long an unmatched (parked) event waits for a replay.
	ParkedTTL Duration `yaml:"parked_ttl"`
	// MaxConcurrent caps callbacks being handled at once, and
	// MaxInflightBytes the body bytes they hold; past either, 503.
	MaxConcurrent    int   `yaml:"max_concurrent"`
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
}

// Auth is how a callback proves it came from the provider. Every check
// that is set must pass.
type Auth struct {
	// Token is a shared secret sent as ?token=, X-Relay-Token or
	// Authorization: Bearer.
	Token            string            `yaml:"token"`
	HMAC             *HMACAuth         `yaml:"hmac"`
	StandardWebhooks *StandardWebhooks `yaml:"standard_webhooks"`
	// AllowIPs are the CIDRs callbacks may come from.
	AllowIPs []string `yaml:"allow_ips"`
}

// HMACAuth is a provider signature over the raw body, in Header.
type HMACAuth struct {
	Header string `yaml:"header"`
	// Secret is one or more secrets separated by spaces (rotation).
	Secret    string `yaml:"secret"`
	Algorithm string `yaml:"algorithm"` // sha256, sha1 or sha512
	Encoding  string `yaml:"encoding"`  // hex or base64
	// Prefix is text before the signature in the header ("sha256=").
	Prefix string `yaml:"prefix"`
}

// StandardWebhooks verifies webhook-id, webhook-timestamp and
// webhook-signature as the Standard Webhooks spec says.
type StandardWebhooks struct {
	// Secret is one or more secrets separated by spaces, each "whsec_"
	// and base64 or the key itself.
	Secret string `yaml:"secret"`
	// Tolerance is how far webhook-timestamp may be from now either way.
	Tolerance Duration `yaml:"tolerance"`
}

// Unmatched policies.
const (
	UnmatchedPark   = "park"
	UnmatchedReject = "reject"
)

// Dedupe configures duplicate suppression.
type Dedupe struct {
	Fields []string `yaml:"fields"`
	TTL    Duration `yaml:"ttl"`
}

// Delivery holds settings shared by all destinations' workers.
type Delivery struct {
	// PollInterval is how often an idle dispatcher looks for due deliveries
	// that no wake-up announced (retries coming due, other processes' work).
	PollInterval Duration `yaml:"poll_interval"`
	// LeaseMargin is how long past a destination's timeout a leased delivery
	// stays hidden from other workers. A worker extends its lease while an
	// attempt runs, so this bounds how soon another process takes over the
	// deliveries of one that died, not how long an attempt may take.
	//
	// Deprecated: the relay leases for Lease, whatever the timeout; the key
	// is still read so that files setting it load.
	LeaseMargin Duration `yaml:"lease_margin"`
	// Lease is how long a leased delivery stays hidden from other workers
	// without its worker's heartbeat, which extends it every third of it
	// while the relay lives: how soon another relay takes over the
	// deliveries of one that was killed, whatever the destination's
	// timeout.
	Lease Duration `yaml:"lease"`
}

// Route sends events of one webhook_id (and matching fields) to destinations.
type Route struct {
	WebhookID string            `yaml:"webhook_id"`
	Match     map[string]string `yaml:"match"`
	// Filter is a jq expression; the route matches only when it yields true
	// (after every match field matched).
	Filter string   `yaml:"filter"`
	To     []string `yaml:"to"`
	// Auth replaces ingest.auth for this webhook_id; routes that share a
	// webhook_id must agree on it.
	Auth *Auth `yaml:"auth"`

	// Line is the route's line in the file, for messages.
	Line int `yaml:"-"`
}

// Destination is a customer endpoint.
type Destination struct {
	Name          string            `yaml:"name"`
	URL           string            `yaml:"url"`
	Agent         string            `yaml:"agent"`
	Headers       map[string]string `yaml:"headers"`
	Timeout       Duration          `yaml:"timeout"`
	SuccessStatus []int             `yaml:"success_status"`
	Retry         Retry             `yaml:"retry"`
	Concurrency   int               `yaml:"concurrency"`
	RateLimit     float64           `yaml:"rate_limit"`
	SigningSecret string            `yaml:"signing_secret"`
	// FollowRedirects makes a 301, 302, 307 or 308 answer be followed (up
	// to 5 hops, same scheme only), re-sending the POST with its body.
	FollowRedirects bool    `yaml:"follow_redirects"`
	TLS             TLS     `yaml:"tls"`
	Circuit         Circuit `yaml:"circuit"`
	// Transform, when set, shapes what this destination is sent; nil sends
	// the original bytes.
	Transform *Transform `yaml:"transform"`

	Line int `yaml:"-"`
}

// Transform sets the body and headers a destination receives, computed by
// jq expressions from the event's body.
type Transform struct {
	// Body is a jq expression whose one result is sent, encoded by Format.
	Body string `yaml:"body"`
	// ContentType replaces the Content-Type; the default follows Format.
	ContentType string `yaml:"content_type"`
	// Format is "json" (the default) or "form" (a flat object, URL-encoded).
	Format string `yaml:"format"`
	// Headers maps header names to jq expressions; a null result leaves
	// the header out.
	Headers map[string]string `yaml:"headers"`
}

// Transform formats.
const (
	FormatJSON = "json"
	FormatForm = "form"
)

// TLS configures how a destination's certificate is checked.
type TLS struct {
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system's, for receivers behind a private CA.
	CAFile string `yaml:"ca_file"`
	// InsecureSkipVerify turns certificate checks off (testing only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Circuit configures a destination's circuit breaker: after Failures
// consecutive failed attempts the destination is paused for FirstCooldown,
// then one probe delivery decides whether it resumes; each failed probe
// doubles the pause, up to Cooldown.
type Circuit struct {
	Failures      int      `yaml:"failures"`
	Cooldown      Duration `yaml:"cooldown"`
	FirstCooldown Duration `yaml:"first_cooldown"`
	// Disabled turns the breaker off: the destination is never paused.
	Disabled bool `yaml:"disabled"`
}

// Retry is a destination's retry policy.
type Retry struct {
	MaxAttempts     int      `yaml:"max_attempts"`
	InitialInterval Duration `yaml:"initial_interval"`
	MaxInterval     Duration `yaml:"max_interval"`
	MaxAge          Duration `yaml:"max_age"`
	// Schedule, when set, lists the wait before each retry instead of
	// exponential backoff: entry 1 after the first failed attempt, and so
	// on; the last entry repeats if max_attempts asks for more.
	Schedule []Duration `yaml:"schedule"`
}

// Agent is a behind-the-firewall agent allowed to connect.
type Agent struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
}

// Portal gives one client a console and admin API limited to its
// destinations: a holder of Token sees only their deliveries and may
// replay only their dead letters.
type Portal struct {
	Name         string   `yaml:"name"`
	Token        string   `yaml:"token"`
	Destinations []string `yaml:"destinations"`
}

// MinPortalTokenBytes is the shortest portal token accepted: it is handed
// to a client, so it must not be guessable.
const MinPortalTokenBytes = 16

// Duration is a time.Duration written as a Go duration string ("250ms", "24h").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Log configures the process log (stderr). Flags -log-level and
// -log-format override Level and Format.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // LogText or LogJSON
	// Sample is the fraction of accepted callbacks and delivered deliveries
	// that get their info line: 1 all, 0 none. Parked, dead-lettered and
	// failed ones are always logged. A pointer because 0 is meaningful.
	Sample *float64 `yaml:"sample"`
}

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)
