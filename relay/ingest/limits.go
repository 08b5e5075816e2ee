package ingest

import (
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxKeyed bounds how many sources a keyedLimiter remembers, so a sender
// cycling through addresses cannot grow it without end.
const maxKeyed = 10000

// keyedLimiter holds a token bucket per key (a client IP). Entries whose
// bucket has refilled are forgotten first when the map is full: forgetting
// them changes nothing.
type keyedLimiter struct {
	limit rate.Limit
	burst int
	idle  time.Duration // how long an unused bucket takes to refill

	mu sync.Mutex
	m  map[string]*keyed
}

type keyed struct {
	lim  *rate.Limiter
	seen time.Time
}

// newKeyedLimiter allows perSec events a second per key, in bursts of up
// to burst.
func newKeyedLimiter(perSec float64, burst int) *keyedLimiter {
	burst = max(burst, 1)
	return &keyedLimiter{
		limit: rate.Limit(perSec),
		burst: burst,
		idle:  time.Duration(float64(burst) / perSec * float64(time.Second)),
		m:     make(map[string]*keyed),
	}
}

// allow takes one token of key's bucket at now.
func (k *keyedLimiter) allow(key string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[key]
	if !ok {
		if len(k.m) >= maxKeyed {
			k.evict(now)
		}
		e = &keyed{lim: rate.NewLimiter(k.limit, k.burst)}
		k.m[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// evict forgets the idle entries; when none is idle (a flood from more
// sources than maxKeyed), an eighth of the map, chosen at random.
func (k *keyedLimiter) evict(now time.Time) {
	for key, e := range k.m {
		if now.Sub(e.seen) >= k.idle {
			delete(k.m, key)
		}
	}
	drop := len(k.m) - maxKeyed + maxKeyed/8
	for key := range k.m {
		if drop <= 0 {
			break
		}
		delete(k.m, key)
		drop--
	}
}

// len reports how many keys are remembered.
func (k *keyedLimiter) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// retryAfter is the Retry-After (whole seconds, at least 1) for a caller
// refused by a limit of perSec.
func retryAfter(perSec float64) string {
	s := 1
	if perSec > 0 && perSec < 1 {
		s = int(math.Ceil(1 / perSec))
	}
	return strconv.Itoa(s)
}

// errBusy reports that reading a body would take the handler past
// max_inflight_bytes.
var errBusy = errors.New("ingest: in-flight body bytes at their cap")

// budget counts the callbacks in progress and the body bytes they hold, so
// neither grows with the number of connections.
type budget struct {
	active atomic.Int64
	bytes  atomic.Int64
}

// enter takes a request slot, if fewer than limit are taken.
func (b *budget) enter(limit int) bool {
	if b.active.Add(1) > int64(limit) {
		b.active.Add(-1)
		return false
	}
	return true
}

func (b *budget) leave() { b.active.Add(-1) }

// reserve takes n bytes of the byte budget, if that stays within limit.
func (b *budget) reserve(n, limit int64) bool {
	if b.bytes.Add(n) > limit {
		b.bytes.Add(-n)
		return false
	}
	return true
}

func (b *budget) release(n int64) { b.bytes.Add(-n) }

// readChunk is how much of a body of unknown length is reserved and read
// at a time.
const readChunk = 32 << 10

// readBody reads r's body within limit bytes. Bytes are reserved from b
// before they are read: a known Content-Length all at once, a chunked body
// as its buffer grows. held is what the caller must release once the body
// is no longer needed, also on error.
func readBody(w http.ResponseWriter, r *http.Request, limit, inflight int64, b *budget) (body []byte, held int64, err error) {
	if r.ContentLength > limit {
		return nil, 0, &http.MaxBytesError{Limit: limit}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength > 0 {
		if !b.reserve(r.ContentLength, inflight) {
			return nil, 0, errBusy
		}
		// One exact allocation for the common case (net/http stops the body
		// at Content-Length); the slice becomes the stored event body.
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, r.ContentLength, err
		}
		return buf, r.ContentLength, nil
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			// Doubling, but never past what the limit lets through.
			grow := max(min(max(int64(cap(buf)), readChunk), limit+1-int64(cap(buf))), 1)
			if !b.reserve(grow, inflight) {
				return nil, held, errBusy
			}
			held += grow
			next := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(next, buf)
			buf = next
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, held, nil
		}
		if err != nil {
			return nil, held, err
		}
	}
}
