package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// formatVersion names the key layout this package reads and writes (doc.go,
// Keys). The format key holds it; a change of layout takes a new version.
const formatVersion = "1"

// formatKey, under the prefix, is the format marker.
const formatKey = "format"

// formatReply starts the error the accept script answers when the marker
// names another format, followed by that format.
const formatReply = "RELAYFORMAT"

// errFormat marks a keyspace in a layout this package does not read.
var errFormat = errors.New("unknown key format")

// formatErr explains why the keys under the prefix cannot be used: found is
// the version their marker names, "" when relay data has no marker.
func (s *Store) formatErr(found string) error {
	what := fmt.Sprintf("format %q", found)
	if found == "" {
		what = "relay data without a format marker"
	}
	return fmt.Errorf("%w: keys under prefix %q hold %s, and this relay reads and writes format %q; "+
		"there is no migration before the first release: drain them with the relay version that wrote them, "+
		"or give this relay another store.redis.prefix or database",
		errFormat, s.prefix, what, formatVersion)
}

// ready checks the format marker once per Store, on the first call that
// reaches Redis: at Open, or after it when Redis did not answer then.
// Concurrent first calls each check; the check is idempotent.
func (s *Store) ready(ctx context.Context) error {
	if s.formatOK.Load() {
		return nil
	}
	if err := s.checkFormat(ctx); err != nil {
		return err
	}
	s.formatOK.Store(true)
	return nil
}

// checkFormat accepts a keyspace marked with formatVersion, marks one with
// no relay data, and refuses the rest. The accept script marks the keyspace
// again should Redis lose it (lua/accept.lua).
func (s *Store) checkFormat(ctx context.Context) error {
	key := s.prefix + formatKey
	found, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, goredis.Nil) {
		var data bool
		if data, err = s.hasData(ctx); err != nil {
			return err
		}
		if data {
			return s.formatErr("")
		}
		// NX: of relays starting together on an empty keyspace, the first
		// marks it and the others read its mark.
		if err = s.rdb.SetNX(ctx, key, formatVersion, 0).Err(); err != nil {
			return err
		}
		found, err = s.rdb.Get(ctx, key).Result()
	}
	if err != nil {
		return err
	}
	if found != formatVersion {
		return s.formatErr(found)
	}
	return nil
}

// hasData reports whether a key under the prefix holds relay data: any but
// the marker, which a relay starting at the same time may have just
// written, and the probe, which CheckWrite may write into a Redis restarted
// empty before its first event. With Cluster every key is on the master of
// one slot.
func (s *Store) hasData(ctx context.Context) (bool, error) {
	var node goredis.Cmdable = s.rdb
	if cc, ok := s.rdb.(*goredis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, s.prefix+formatKey)
		if err != nil {
			return false, err
		}
		node = m
	}
	// The characters special in a MATCH pattern, quoted.
	match := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s.prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return false, err
		}
		for _, k := range keys {
			if k != s.prefix+formatKey && k != s.prefix+"probe" {
				return true, nil
			}
		}
		if next == 0 {
			return false, nil
		}
		cursor = next
	}
}
