package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaygw/relay/internal/redact"
	"github.com/relaygw/relay/internal/whsig"
)

// namePattern is what destination and agent names must match: they appear
// in metrics labels, store keys and admin URLs.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validator collects every problem of a defaulted Config, each at the line
// of the key it is about (or of the nearest enclosing key that is present).
type validator struct {
	c    *Config
	pos  positions
	errs []Error
}

func (v *validator) add(line int, format string, args ...any) {
	v.errs = append(v.errs, Error{Line: line, Msg: fmt.Sprintf(format, args...)})
}

// checkPresence reports what only the raw file shows, before SetDefaults
// fills it in: a "store" key that selects no backend.
func checkPresence(c *Config, pos positions) []Error {
	line, given := pos["store"]
	if given && c.Store.Embedded == nil && c.Store.Redis == nil {
		return []Error{{Line: line, Msg: "store: set one of embedded or redis"}}
	}
	return nil
}

// validate checks a Config after SetDefaults and returns every problem.
func validate(c *Config, pos positions) []Error {
	v := &validator{c: c, pos: pos}
	v.listeners()
	v.store()
	v.ingest()
	v.ingestLimits()
	v.dedupe()
	if c.Delivery.PollInterval <= 0 {
		v.add(pos.line("delivery.poll_interval"), "delivery.poll_interval must be positive, got %s", c.Delivery.PollInterval)
	}
	if c.Delivery.LeaseMargin <= 0 {
		v.add(pos.line("delivery.lease_margin"), "delivery.lease_margin must be positive, got %s", c.Delivery.LeaseMargin)
	}
	if c.Delivery.Lease < minLease {
		v.add(pos.line("delivery.lease"), "delivery.lease must be at least %s, got %s", minLease, c.Delivery.Lease)
	}
	v.destinations(v.agents())
	v.routes()
	v.portals()
	v.routeAuth()
	v.log()
	return v.errs
}

func (v *validator) listeners() {
	for _, l := range []struct{ key, addr string }{{"listen", v.c.Listen}, {"admin.listen", v.c.Admin.Listen}} {
		if err := checkHostPort(l.addr); err != nil {
			v.add(v.pos.line(l.key), "%s: %q is not host:port: %v", l.key, l.addr, err)
		}
	}
	if v.c.Listen == v.c.Admin.Listen && !strings.HasSuffix(v.c.Listen, ":0") {
		v.add(v.pos.line("admin.listen", "listen"), "admin.listen must differ from listen (both %q)", v.c.Listen)
	}
	v.cidrs("admin.trusted_proxies", v.c.Admin.TrustedProxies)
	// A heap profile holds whatever the process holds: secrets and bodies.
	if v.c.Admin.Pprof && v.c.Admin.Token == "" {
		v.add(v.pos.line("admin.pprof", "admin"), "admin.pprof needs admin.token: profiles show the process's memory, secrets and bodies included")
	}
	if v.c.Admin.MetricsAuth && v.c.Admin.Token == "" {
		v.add(v.pos.line("admin.metrics_auth", "admin"), "admin.metrics_auth needs admin.token: it is the token /metrics then asks for")
	}
	if v.c.Admin.Token == "" && exposed(v.c.Admin.Listen) {
		v.add(v.pos.line("admin.listen", "admin.token", "admin"),
			"admin.listen %q is reachable from other hosts and admin.token is empty: set admin.token (whoever reaches the admin API can replay and delete deliveries), or listen on a loopback address",
			v.c.Admin.Listen)
	}
}

// exposed reports whether a listen address takes connections from other
// hosts: anything but a loopback address or localhost. A host name other
// than localhost counts as exposed: what it resolves to may change.
func exposed(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false // reported as not host:port
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}

// checkHostPort accepts what net.Listen accepts for TCP with a numeric port;
// an empty host means every interface.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			return fmt.Errorf("%s", ae.Err)
		}
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// minLease keeps a lease long enough for a heartbeat (every third of it) to
// reach the store before it runs out.
const minLease = Duration(300 * time.Millisecond)

func (v *validator) store() {
	s := v.c.Store
	if s.WriteTimeout <= 0 {
		v.add(v.pos.line("store.write_timeout"), "store.write_timeout must be positive, got %s", s.WriteTimeout)
	}
	if s.Embedded != nil && s.Redis != nil {
		v.add(v.pos.line("store"), "store: set only one of embedded or redis, not both")
	}
	if e := s.Embedded; e != nil && e.Path == "" {
		v.add(v.pos.line("store.embedded.path", "store.embedded"), "store.embedded.path is required")
	}
	if e := s.Embedded; e != nil && e.Retention <= 0 {
		v.add(v.pos.line("store.embedded.retention"), "store.embedded.retention must be positive, got %s", e.Retention)
	}
	r := s.Redis
	if r == nil {
		return
	}
	if line := v.pos.line("store.redis.url", "store.redis"); r.URL == "" {
		v.add(line, "store.redis.url is required")
	} else if err := checkRedisURL(r.URL, r.Cluster); err != nil {
		v.add(line, "store.redis.url: %v", err)
	}
	if r.Retention <= 0 {
		v.add(v.pos.line("store.redis.retention"), "store.redis.retention must be positive, got %s", r.Retention)
	}
	if r.Partitions < 1 || r.Partitions > MaxRedisPartitions {
		v.add(v.pos.line("store.redis.partitions", "store.redis"), "store.redis.partitions must be from 1 to %d, got %d", MaxRedisPartitions, r.Partitions)
	} else if r.Cluster && r.Partitions > 1 && hasHashTag(r.Prefix) {
		v.add(v.pos.line("store.redis.prefix", "store.redis"),
			"store.redis.prefix %q holds a hash tag ({...}), which would put every partition in one slot of the cluster; leave the braces out", r.Prefix)
	}
}

// checkRedisURL never quotes the URL unredacted: it may hold a password.
// It ends with go-redis's own parse, the one the store opens with (for a
// cluster, ParseClusterURL), so that check refuses what serve would.
func checkRedisURL(raw string, cluster bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a valid URL: %s", redact.Error(err, raw))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("%q must start with redis:// or rediss://", redact.URL(u))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", redact.URL(u))
	}
	if err := checkSeeds(u, cluster); err != nil {
		return fmt.Errorf("%q: %w", redact.URL(u), err)
	}
	parse := func(raw string) error { _, err := goredis.ParseURL(raw); return err }
	if cluster {
		parse = func(raw string) error { _, err := goredis.ParseClusterURL(raw); return err }
	}
	if err := parse(raw); err != nil {
		return fmt.Errorf("%q: %s", redact.URL(u), redact.Error(err, raw))
	}
	return nil
}

// checkSeeds checks what a cluster's URL adds, which go-redis does not: a
// cluster has only database 0, and every addr parameter, one more seed, is
// a host:port.
func checkSeeds(u *url.URL, cluster bool) error {
	addrs := u.Query()["addr"]
	if !cluster {
		if len(addrs) > 0 {
			return errors.New("addr parameters name cluster seeds; set store.redis.cluster: true")
		}
		return nil
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return errors.New("a Redis Cluster has only database 0")
	}
	for i, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("addr parameter %d is not host:port", i+1)
		}
	}
	return nil
}

func (v *validator) ingest() {
	in := v.c.Ingest
	if in.MaxBodyBytes <= 0 {
		v.add(v.pos.line("ingest.max_body_bytes"), "ingest.max_body_bytes must be positive, got %d", in.MaxBodyBytes)
	}
	if in.ResponseStatus != 200 && in.ResponseStatus != 202 {
		v.add(v.pos.line("ingest.response_status"), "ingest.response_status must be 200 or 202, got %d", in.ResponseStatus)
	}
	if in.Unmatched != UnmatchedPark && in.Unmatched != UnmatchedReject {
		v.add(v.pos.line("ingest.unmatched"), "ingest.unmatched must be %q or %q, got %q", UnmatchedPark, UnmatchedReject, in.Unmatched)
	}
}

func (v *validator) dedupe() {
	seen := map[string]bool{}
	for i, f := range v.c.Dedupe.Fields {
		line := v.pos.line(fmt.Sprintf("dedupe.fields.%d", i), "dedupe.fields")
		switch {
		case f == "":
			v.add(line, "dedupe.fields: entry %d is empty", i+1)
		case seen[f]:
			v.add(line, "dedupe.fields: %q is listed twice", f)
		}
		seen[f] = true
	}
	if v.c.Dedupe.TTL <= 0 {
		v.add(v.pos.line("dedupe.ttl"), "dedupe.ttl must be positive, got %s", v.c.Dedupe.TTL)
	}
}

// agents checks the agents and returns the valid names with their lines.
func (v *validator) agents() map[string]int {
	names := map[string]int{}
	for i, a := range v.c.Agents {
		p := fmt.Sprintf("agents.%d", i)
		line := v.pos.line(p+".name", p)
		lbl, ok := v.name("agent", i, a.Name, line, names)
		if ok {
			names[a.Name] = line
		}
		if a.Token == "" {
			v.add(v.pos.line(p+".token", p), "%s: token is required", lbl)
		} else if len(a.Token) < MinAgentTokenBytes {
			// The token is never quoted; its length is no secret worth keeping.
			v.add(v.pos.line(p+".token", p), "%s: token must be at least %d bytes (it is %d); use a long random one, e.g. openssl rand -hex 32",
				lbl, MinAgentTokenBytes, len(a.Token))
		}
	}
	return names
}

// name checks an agent's or destination's name and returns the label that
// messages about the entry use: its name when valid, else "kind N".
func (v *validator) name(kind string, i int, name string, line int, seen map[string]int) (string, bool) {
	lbl := fmt.Sprintf("%s %d", kind, i+1)
	switch first, dup := seen[name]; {
	case name == "":
		v.add(line, "%s: name is required", lbl)
	case !namePattern.MatchString(name):
		v.add(line, "%s: name %q must match %s", lbl, name, namePattern)
	case dup:
		v.add(line, "duplicate %s %q (first defined at line %d)", kind, name, first)
		return fmt.Sprintf("%s %q", kind, name), false
	default:
		return fmt.Sprintf("%s %q", kind, name), true
	}
	return lbl, false
}

// destinations checks every destination.
func (v *validator) destinations(agents map[string]int) {
	names := map[string]int{}
	for i := range v.c.Destinations {
		d := &v.c.Destinations[i]
		p := fmt.Sprintf("destinations.%d", i)
		line := v.pos.line(p+".name", p)
		if line == 0 {
			line = d.Line
		}
		lbl, ok := v.name("destination", i, d.Name, line, names)
		if ok {
			names[d.Name] = line
		}
		dv := destValidator{validator: v, d: d, path: p, label: lbl, line: line}
		dv.check(agents)
	}
}

// destValidator checks one destination.
type destValidator struct {
	*validator
	d     *Destination
	path  string // positions path, "destinations.2"
	label string // message prefix, `destination "acme-crm"`
	line  int    // the destination's own line, for keys it lacks
}

func (dv destValidator) at(key string) int {
	if l := dv.pos.line(dv.path + "." + key); l != 0 {
		return l
	}
	return dv.line
}

func (dv destValidator) check(agents map[string]int) {
	d := dv.d
	dv.url()
	if _, ok := agents[d.Agent]; d.Agent != "" && !ok {
		dv.add(dv.at("agent"), "%s: unknown agent %q", dv.label, d.Agent)
	}
	dv.headers()
	dv.transform()
	if d.SigningSecret != "" {
		if _, err := whsig.ParseKeys(d.SigningSecret); err != nil {
			dv.add(dv.at("signing_secret"), "%s: signing_secret: %v", dv.label, err)
		}
	}
	if d.Timeout <= 0 {
		dv.add(dv.at("timeout"), "%s: timeout must be positive, got %s", dv.label, d.Timeout)
	}
	for i, s := range d.SuccessStatus {
		if s < 100 || s > 599 {
			dv.add(dv.at(fmt.Sprintf("success_status.%d", i)), "%s: success_status %d is not between 100 and 599", dv.label, s)
		}
	}
	dv.retry()
	dv.circuit()
	dv.tls() // on the relay's machine for an agent destination too: the relay sends the CA
	if d.Concurrency < 0 {
		dv.add(dv.at("concurrency"), "%s: concurrency must not be negative, got %d", dv.label, d.Concurrency)
	}
	if math.IsNaN(d.RateLimit) || math.IsInf(d.RateLimit, 0) {
		dv.add(dv.at("rate_limit"), "%s: rate_limit must be a finite number", dv.label)
	} else if d.RateLimit < 0 {
		dv.add(dv.at("rate_limit"), "%s: rate_limit must not be negative, got %g", dv.label, d.RateLimit)
	}
}

// url never quotes the URL unredacted: it may carry credentials.
func (dv destValidator) url() {
	raw := dv.d.URL
	if raw == "" {
		dv.add(dv.at("url"), "%s: url is required", dv.label)
		return
	}
	if hostPortPath.MatchString(raw) {
		// url.Parse's "first path segment in URL cannot contain colon"
		// helps nobody; a missing scheme is what it nearly always means.
		dv.add(dv.at("url"), "%s: url %q has no scheme: write http://%s or https://%s", dv.label, raw, raw, raw)
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		dv.add(dv.at("url"), "%s: url is not a valid URL: %s", dv.label, redact.Error(err, raw))
		return
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		dv.add(dv.at("url"), "%s: url %q is not an absolute http:// or https:// URL", dv.label, redact.URL(u))
	}
}

// headers checks names and values; values are never quoted (API keys).
func (dv destValidator) headers() {
	for name, val := range dv.d.Headers {
		line := dv.at("headers." + name)
		if !validHeaderName(name) {
			dv.add(line, "%s: header name %q is not a valid HTTP header name", dv.label, name)
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			dv.add(line, "%s: header %q value contains a line break or NUL", dv.label, name)
		}
	}
}

func (dv destValidator) retry() {
	r := dv.d.Retry
	if r.MaxAttempts < 1 {
		dv.add(dv.at("retry.max_attempts"), "%s: retry.max_attempts must be at least 1, got %d", dv.label, r.MaxAttempts)
	}
	for _, f := range []struct {
		key string
		val Duration
	}{{"initial_interval", r.InitialInterval}, {"max_interval", r.MaxInterval}, {"max_age", r.MaxAge}} {
		if f.val <= 0 {
			dv.add(dv.at("retry."+f.key), "%s: retry.%s must be positive, got %s", dv.label, f.key, f.val)
		}
	}
	if r.InitialInterval > r.MaxInterval {
		dv.add(dv.at("retry.initial_interval"), "%s: retry.initial_interval %s is greater than retry.max_interval %s",
			dv.label, r.InitialInterval, r.MaxInterval)
	}
	dv.schedule()
}

// schedule checks retry.schedule. The exponential keys mean nothing beside
// it, so writing both is refused rather than silently ignored.
func (dv destValidator) schedule() {
	r := dv.d.Retry
	if len(r.Schedule) == 0 {
		return
	}
	for i, w := range r.Schedule {
		if w < 0 {
			dv.add(dv.at(fmt.Sprintf("retry.schedule.%d", i)), "%s: retry.schedule entry %d must not be negative, got %s", dv.label, i+1, w)
		}
	}
	for _, key := range []string{"initial_interval", "max_interval"} {
		if l := dv.pos.line(dv.path + ".retry." + key); l != 0 {
			dv.add(l, "%s: retry.%s has no effect with retry.schedule; remove one of them", dv.label, key)
		}
	}
}

func (dv destValidator) circuit() {
	c := dv.d.Circuit
	if c.Failures < 0 {
		dv.add(dv.at("circuit.failures"), "%s: circuit.failures must be positive, got %d (circuit.disabled: true turns the breaker off)", dv.label, c.Failures)
	}
	if c.Cooldown <= 0 {
		dv.add(dv.at("circuit.cooldown"), "%s: circuit.cooldown must be positive, got %s", dv.label, c.Cooldown)
	}
	if c.Cooldown > 0 && (c.FirstCooldown <= 0 || c.FirstCooldown > c.Cooldown) {
		dv.add(dv.at("circuit.first_cooldown"), "%s: circuit.first_cooldown must be positive and at most circuit.cooldown (%s), got %s", dv.label, c.Cooldown, c.FirstCooldown)
	}
}

// tls reads tls.ca_file now, so a missing or unusable file is reported with
// its line rather than when the first delivery fails.
func (dv destValidator) tls() {
	t := dv.d.TLS
	if t.CAFile == "" {
		return
	}
	line := dv.at("tls.ca_file")
	if t.InsecureSkipVerify {
		dv.add(line, "%s: tls.ca_file has no effect with tls.insecure_skip_verify; remove one of them", dv.label)
		return
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		dv.add(line, "%s: tls.ca_file: %v", dv.label, err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		dv.add(line, "%s: tls.ca_file %q holds no PEM certificate", dv.label, t.CAFile)
	}
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func (v *validator) routes() {
	for i, r := range v.c.Routes {
		p := fmt.Sprintf("routes.%d", i)
		lbl := fmt.Sprintf("route %d", i+1)
		line := v.pos.line(p)
		if line == 0 {
			line = r.Line
		}
		at := func(key string) int {
			if l := v.pos.line(p + "." + key); l != 0 {
				return l
			}
			return line
		}
		if r.WebhookID == "" {
			v.add(at("webhook_id"), "%s: webhook_id is required", lbl)
		}
		if _, ok := r.Match[""]; ok {
			v.add(at("match"), "%s: match has an empty field name", lbl)
		}
		if r.Filter != "" {
			if err := checkJQ(r.Filter); err != nil {
				v.add(at("filter"), "%s: filter: %v", lbl, err)
			}
		}
		if len(r.To) == 0 {
			v.add(at("to"), "%s: to must name at least one destination", lbl)
		}
		seen := map[string]bool{}
		for j, name := range r.To {
			entry := at(fmt.Sprintf("to.%d", j))
			switch {
			case name == "":
				v.add(entry, "%s: to entry %d is empty", lbl, j+1)
			case seen[name]:
				v.add(entry, "%s: destination %q is listed twice", lbl, name)
			case !v.hasDestination(name):
				v.add(entry, "%s: unknown destination %q", lbl, name)
			}
			seen[name] = true
		}
	}
}

// hasDestination reports whether any destination, valid or not, has name,
// so that a route naming a destination with problems of its own is not
// reported again as naming an unknown one.
func (v *validator) hasDestination(name string) bool {
	_, ok := v.c.Destination(name)
	return ok
}

// portals checks each portal's name, token and destinations. A token may
// open one portal only, and never the whole admin API or an agent's
// connection.
func (v *validator) portals() {
	names := map[string]int{}
	tokens := map[string]string{}
	agentTokens := map[string]string{}
	for _, a := range v.c.Agents {
		agentTokens[a.Token] = a.Name
	}
	// With no admin.token the admin API asks no one for a token, so a
	// portal client who leaves its token out gets the admin's view.
	if len(v.c.Portals) > 0 && v.c.Admin.Token == "" {
		v.add(v.pos.line("portals"), "portals need admin.token: without it every request, a portal client's without its token included, sees and does everything")
	}
	for i, p := range v.c.Portals {
		path := fmt.Sprintf("portals.%d", i)
		line := v.pos.line(path+".name", path)
		lbl, ok := v.name("portal", i, p.Name, line, names)
		if ok {
			names[p.Name] = line
		}
		tline := v.pos.line(path+".token", path)
		switch prev, dup := tokens[p.Token]; {
		case len(p.Token) < MinPortalTokenBytes:
			v.add(tline, "%s: token must be at least %d bytes, got %d", lbl, MinPortalTokenBytes, len(p.Token))
		case p.Token == v.c.Admin.Token:
			v.add(tline, "%s: token must differ from admin.token", lbl)
		case agentTokens[p.Token] != "":
			v.add(tline, "%s: token must differ from agent %q's", lbl, agentTokens[p.Token])
		case dup:
			v.add(tline, "%s: token is the same as %s's", lbl, prev)
		default:
			tokens[p.Token] = lbl
		}
		dline := v.pos.line(path+".destinations", path)
		if len(p.Destinations) == 0 {
			v.add(dline, "%s: destinations must name at least one destination", lbl)
		}
		seen := map[string]bool{}
		for j, name := range p.Destinations {
			entry := v.pos.line(fmt.Sprintf("%s.destinations.%d", path, j), path+".destinations", path)
			switch {
			case seen[name]:
				v.add(entry, "%s: destination %q is listed twice", lbl, name)
			case !v.hasDestination(name):
				v.add(entry, "%s: unknown destination %q", lbl, name)
			}
			seen[name] = true
		}
	}
}

// hostPortPath matches a URL written without its scheme (127.0.0.1:9999/x).
var hostPortPath = regexp.MustCompile(`^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]+(/.*)?$`)

// log checks the log section.
func (v *validator) log() {
	l := v.c.Log
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add(v.pos.line("log.level"), "log.level must be debug, info, warn or error, got %q", l.Level)
	}
	switch l.Format {
	case LogText, LogJSON:
	default:
		v.add(v.pos.line("log.format"), "log.format must be text or json, got %q", l.Format)
	}
	if l.Sample != nil && (*l.Sample < 0 || *l.Sample > 1) {
		v.add(v.pos.line("log.sample"), "log.sample must be between 0 (no per-callback lines) and 1 (all), got %v", *l.Sample)
	}
}

// hasHashTag reports whether a Redis Cluster would hash a key starting with
// prefix by a tag in it: a "{" followed later by "}" with something between.
func hasHashTag(prefix string) bool {
	if i := strings.IndexByte(prefix, '{'); i >= 0 {
		return strings.IndexByte(prefix[i+1:], '}') > 0
	}
	return false
}
