package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"
)

// formatVersion names the key layout this package reads and writes (doc.go,
// Keys). The format key holds it; a change of layout takes a new version.
const formatVersion = "1"

// formatKey, under each partition's prefix, is the format marker.
const formatKey = "format"

// formatReply starts the error the accept script answers when the marker
// names another format, followed by that format.
const formatReply = "RELAYFORMAT"

// errFormat marks a keyspace in a layout this package does not read.
var errFormat = errors.New("unknown key format")

// formatValue is the marker's value for a layout of n partitions: the
// version, and with more than one partition "/" and their number, so that
// a relay configured with another number refuses the data.
func formatValue(n int) string {
	if n == 1 {
		return formatVersion
	}
	return formatVersion + "/" + strconv.Itoa(n)
}

// formatErr explains why the keys under the prefix cannot be used: found is
// the value of the marker there, "" when relay data has no marker.
func (s *Store) formatErr(found string) error {
	version, n, _ := strings.Cut(found, "/")
	if version == formatVersion && found != s.format {
		if n == "" {
			n = "1"
		}
		return fmt.Errorf("%w: keys under prefix %q were written with %s partitions, and this relay is configured with %d "+
			"(store.redis.partitions); the number of partitions cannot change for existing data: set store.redis.partitions: %s, "+
			"or give this relay another store.redis.prefix or database",
			errFormat, s.prefix, n, len(s.parts), n)
	}
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

// otherMarkers are the marker keys of the layouts with another number of
// partitions under the same prefix: that of one partition (also as a
// cluster writes it) when this store has several, and that of partition 0
// of several when it has one. Every layout of several partitions has a
// partition 0, whose marker names their number.
func (s *Store) otherMarkers() []string {
	if len(s.parts) > 1 {
		return []string{s.prefix + formatKey, clusterPrefix(s.prefix) + formatKey}
	}
	base := s.prefix
	if strings.HasPrefix(base, "{") && strings.HasSuffix(base, "}") && !hashTag(base[1:len(base)-1]) {
		base = base[1 : len(base)-1] // a cluster's, see clusterPrefix
	}
	return []string{partPrefix(base, 0, 2) + formatKey}
}

// checkFormat accepts a keyspace whose partitions are marked with this
// store's format, marks the partitions of one with no relay data, and
// refuses the rest. The accept script marks a partition again should Redis
// lose it (lua/accept.lua).
func (s *Store) checkFormat(ctx context.Context) error {
	keys := s.otherMarkers()
	for _, pt := range s.parts {
		keys = append(keys, pt.prefix+formatKey)
	}
	found, err := s.getAll(ctx, keys)
	if err != nil {
		return err
	}
	other := len(keys) - len(s.parts)
	for _, v := range found[:other] {
		if v != "" {
			return s.formatErr(v)
		}
	}
	var missing []string
	marked := false
	for i, v := range found[other:] {
		switch {
		case v == "":
			missing = append(missing, keys[other+i])
		case v != s.format:
			return s.formatErr(v)
		default:
			marked = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !marked {
		data, err := s.hasData(ctx, keys)
		if err != nil {
			return err
		}
		if data {
			return s.formatErr("")
		}
	}
	// NX: of relays starting together on an empty keyspace, the first
	// marks it and the others read its mark. A partition of marked data
	// without its marker lost it with its keys (a master restarted empty):
	// it gets it again, as the accept script would give it.
	pipe := s.rdb.Pipeline()
	for _, k := range missing {
		pipe.SetNX(ctx, k, s.format, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if found, err = s.getAll(ctx, missing); err != nil {
		return err
	}
	for _, v := range found {
		if v != s.format {
			return s.formatErr(v)
		}
	}
	return nil
}

// getAll reads string keys, "" for a missing one, in one pipeline.
func (s *Store) getAll(ctx context.Context, keys []string) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// hasData reports whether a key under the prefix holds relay data: any but
// the markers (skip), which a relay starting at the same time may have just
// written, and the probe, which CheckWrite may write into a Redis restarted
// empty before its first event. On a cluster it looks on every master.
func (s *Store) hasData(ctx context.Context, skip []string) (bool, error) {
	ignore := map[string]bool{s.prefix + "probe": true}
	for _, k := range skip {
		ignore[k] = true
	}
	// The characters special in a MATCH pattern, quoted.
	match := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s.prefix) + "*"
	scan := func(ctx context.Context, node goredis.Cmdable) (bool, error) {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return false, err
			}
			for _, k := range keys {
				if !ignore[k] {
					return true, nil
				}
			}
			if next == 0 {
				return false, nil
			}
			cursor = next
		}
	}
	cc, ok := s.rdb.(*goredis.ClusterClient)
	if !ok {
		return scan(ctx, s.rdb)
	}
	var mu sync.Mutex
	data := false
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		found, err := scan(ctx, m)
		mu.Lock()
		data = data || found
		mu.Unlock()
		return err
	})
	return data, err
}
