package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/internal/clock"
	"github.com/relaygw/relay/relay/store"
)

// FileName is the name of the database file inside the store's directory.
const FileName = "relay.db"

// Defaults for Options fields left zero that are no config key; Retention's
// is config.DefaultEmbeddedRetention.
const (
	DefaultMaxBatch      = 1000
	DefaultSweepInterval = time.Minute
	DefaultOpenTimeout   = 5 * time.Second
)

// Options tunes an embedded store. The zero value is ready to use.
type Options struct {
	// Logger receives commit failures and sweep summaries; nil discards them.
	Logger *slog.Logger
	// MaxBatch caps how many writes share one transaction (DefaultMaxBatch).
	MaxBatch int
	// SweepInterval is how often expired dedupe claims and leases are
	// dropped and events past their retention deleted
	// (DefaultSweepInterval). Expired claims are ignored before that anyway.
	SweepInterval time.Duration
	// OpenTimeout is how long Open waits for another process to release the
	// file lock (DefaultOpenTimeout).
	OpenTimeout time.Duration
	// Retention is how long an event is kept after its last delivery
	// finished (delivered, or deleted from the DLQ)
	// (config.DefaultEmbeddedRetention). The sweep deletes it with its body,
	// deliveries and attempt logs. Events with a dead or pending delivery,
	// and parked events, are kept.
	Retention time.Duration
	// Clock is what leases, due times, dedupe expiry, retention and the
	// sweep read and wait on (clock.Real when nil).
	Clock clock.Clock
}

// Store is the embedded store.Store. Create it with Open.
type Store struct {
	db       *bbolt.DB
	log      *slog.Logger
	clock    clock.Clock
	maxBatch int

	// ops feeds the committer; closeMu guards sends against Close.
	ops     chan *op
	closeMu sync.RWMutex
	closed  bool

	committerDone chan struct{}
	stopSweep     chan struct{}
	sweepDone     chan struct{}

	leases leaseTable

	retention time.Duration
	retireMu  sync.Mutex // held by a sweep of events
	retire    retireWalk

	commits atomic.Int64 // transactions committed, for tests and benchmarks
	health  store.WriteHealth
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.WriteChecker = (*Store)(nil)
)

// Open opens (creating if needed) the store in directory dir, which is created
// with mode 0700 if missing and holds the file relay.db.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.OpenTimeout,
		// The freelist is rebuilt on open instead of written on every
		// commit, which makes each commit cheaper (as etcd does). The
		// rebuild walks every page in use; mmapFlags reads the file in
		// sequentially first where the platform can.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
		MmapFlags:      mmapFlags,
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			err = fmt.Errorf("%w (is another relay using it?)", err)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// Only the first map reads the file in: a later one (bbolt maps the
	// file again each time it outgrows the map) would read all of it again
	// on a host whose page cache cannot hold it, and stall every write.
	db.MmapFlags = 0
	if err := initFile(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:            db,
		log:           opts.Logger,
		clock:         opts.Clock,
		maxBatch:      opts.MaxBatch,
		ops:           make(chan *op, opts.MaxBatch),
		committerDone: make(chan struct{}),
		stopSweep:     make(chan struct{}),
		sweepDone:     make(chan struct{}),
		leases:        leaseTable{m: map[string]*lease{}, from: map[string]mark{}},
		retention:     opts.Retention,
	}
	go s.commitLoop()
	s.startSweeps(opts.SweepInterval)
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.Retention <= 0 {
		o.Retention = config.DefaultEmbeddedRetention
	}
	o.Clock = clock.Or(o.Clock)
	return o
}

// Retention returns how long finished events are kept: Options.Retention,
// or its default.
func (s *Store) Retention() time.Duration { return s.retention }

// Commits returns how many write transactions (each one fsynced group of
// writes) the store has committed since Open, for benchmarks.
func (s *Store) Commits() int64 { return s.commits.Load() }

// PagesWritten returns how many pages the store's commits have written
// since Open (bbolt's count, the meta page of each commit aside), for
// benchmarks: what a commit writes, the kernel must also write back.
func (s *Store) PagesWritten() int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

// Close waits for queued writes to commit, then closes the file. Calls after
// Close return store.ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return fmt.Errorf("bolt: close: %w", store.ErrClosed)
	}
	s.closed = true
	close(s.ops)
	s.closeMu.Unlock()

	<-s.committerDone
	close(s.stopSweep)
	<-s.sweepDone
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// Ping reports whether the file can be read.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(*bbolt.Tx) error { return nil })
}

// CheckWrite returns nil while the last commit succeeded; after a refused
// one it commits a small probe write (the time, under the meta bucket's
// "probe" key) and returns its outcome.
func (s *Store) CheckWrite(ctx context.Context) error {
	return s.health.Check(ctx, func(ctx context.Context) error {
		now := s.clock.Now().UTC().AppendFormat(nil, time.RFC3339Nano)
		err := s.submitOp(&op{ctx: ctx, probe: true, apply: func(b *batch) error {
			return b.tx.Bucket(bucketMeta).Put([]byte("probe"), now)
		}})
		if err != nil {
			return fmt.Errorf("bolt: probe write: %w", err)
		}
		return nil
	})
}

// WriteErrors counts the writes refused since Open: each caller of a
// failed commit counts once.
func (s *Store) WriteErrors() int64 { return s.health.Errors() }

// view runs fn in a read-only transaction unless the store is closed.
func (s *Store) view(ctx context.Context, what string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w", what, err)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return fmt.Errorf("bolt: %s: %w", what, store.ErrClosed)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("bolt: %s: %w", what, err)
	}
	return nil
}
