package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// expireLimit caps the parked events one script call deletes, so a long
// backlog never holds Redis in one call.
const expireLimit = 500

// ExpireParked deletes the parked events created before cutoff, with
// their bodies and index entries, and returns how many it deleted. The
// creation time is the accept script's clock ("ca").
func (s *Store) ExpireParked(ctx context.Context, cutoff time.Time) (int, error) {
	if err := s.check(); err != nil {
		return 0, fmt.Errorf("redis: expire parked: %w", err)
	}
	ns := strconv.FormatInt(cutoff.UnixNano(), 10)
	total := 0
	var first error
	for _, pt := range s.parts {
		// A partition that fails (its master down) leaves the others to go on.
		n, err := s.expireParked(ctx, pt, ns)
		total += n
		if err != nil && first == nil {
			first = err
		}
		if err != nil && !unavailable(err) {
			break
		}
	}
	return total, first
}

// expireParked is ExpireParked in partition pt.
func (s *Store) expireParked(ctx context.Context, pt *part, ns string) (int, error) {
	total := 0
	for {
		reply, err := s.run(ctx, pt, s.sc.expireParked, ns, expireLimit)
		if err != nil {
			return total, s.fail("expire parked", err)
		}
		arr, err := array(reply)
		if err != nil || len(arr) != 2 {
			return total, fmt.Errorf("redis: expire parked: bad reply %v: %v", reply, err)
		}
		n, err1 := integer(arr[0])
		more, err2 := integer(arr[1])
		if err1 != nil || err2 != nil {
			return total, fmt.Errorf("redis: expire parked: bad reply %v", reply)
		}
		total += int(n)
		if more == 0 {
			return total, nil
		}
	}
}
