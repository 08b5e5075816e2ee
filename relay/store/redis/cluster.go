package redis

import (
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// clusterReload is how often a cluster client re-reads the slot map while
// it is used. go-redis re-reads it on a MOVED reply, else once a minute;
// calls to a dead master fail with connection errors, not MOVED, so after
// a failover its slots would stay unreachable for up to that minute.
const clusterReload = time.Second

// parseURL reads opts.URL: as goredis.ParseURL does for one server, as
// goredis.ParseClusterURL does (one seed, more as addr parameters) with
// Cluster on. Open tunes the returned *Options either way; for a cluster
// it holds only that tuning, which newClient then applies to every node.
func parseURL(opts Options) (*goredis.Options, *goredis.ClusterOptions, error) {
	if !opts.Cluster {
		ro, err := goredis.ParseURL(opts.URL)
		return ro, nil, err
	}
	co, err := goredis.ParseClusterURL(opts.URL)
	if err != nil {
		return nil, nil, err
	}
	return &goredis.Options{Addr: strings.Join(co.Addrs, ",")}, co, nil
}

// newClient is a client for one server, or with co a cluster client whose
// node connections carry the tuning Open put on ro.
func newClient(ro *goredis.Options, co *goredis.ClusterOptions) goredis.UniversalClient {
	if co == nil {
		return goredis.NewClient(ro)
	}
	co.NewClient = func(o *goredis.Options) *goredis.Client {
		if ro.PoolSize > 0 {
			o.PoolSize = ro.PoolSize
		}
		if ro.DialTimeout > 0 {
			o.DialTimeout = ro.DialTimeout
		}
		if ro.ReadTimeout != 0 {
			o.ReadTimeout = ro.ReadTimeout
		}
		if ro.WriteTimeout != 0 {
			o.WriteTimeout = ro.WriteTimeout
		}
		if ro.DialerRetries != 0 {
			o.DialerRetries = ro.DialerRetries
		}
		o.ContextTimeoutEnabled = o.ContextTimeoutEnabled || ro.ContextTimeoutEnabled
		o.DisableIdentity = o.DisableIdentity || ro.DisableIdentity
		return goredis.NewClient(o)
	}
	if co.ClusterStateReloadInterval == 0 {
		co.ClusterStateReloadInterval = clusterReload
	}
	return goredis.NewClusterClient(co)
}

// clusterPrefix puts the whole prefix in one hash tag unless it already
// holds one, so that with one partition every key of the store lands in one
// slot: the scripts touch many keys at once, and a cluster runs a script
// only on keys of one slot.
func clusterPrefix(prefix string) string {
	if hashTag(prefix) {
		return prefix
	}
	return "{" + prefix + "}"
}

// hashTag reports whether prefix holds a Redis Cluster hash tag (a "{"
// followed later by "}" with something between), which puts every key
// starting with it in one slot.
func hashTag(prefix string) bool {
	if i := strings.IndexByte(prefix, '{'); i >= 0 {
		return strings.IndexByte(prefix[i+1:], '}') > 0
	}
	return false
}
