package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// compactTxSize bounds the writes of one transaction of Compact, so that a
// large file is copied without holding all of it in one transaction.
const compactTxSize = 64 << 20

// CompactResult reports the file's size before and after Compact.
type CompactResult struct {
	Before, After int64
}

// Compact rewrites the store in dir into a new file holding only live
// pages, then puts it in place of the old one. bbolt never shrinks its
// file: pages freed after a large backlog are reused but not given back,
// and this is the way to give them back. The relay using dir must be
// stopped: Compact takes the file's lock and fails after timeout if
// another process holds it.
func Compact(dir string, timeout time.Duration) (CompactResult, error) {
	path := filepath.Join(dir, FileName)
	st, err := os.Stat(path)
	if err != nil {
		return CompactResult{}, fmt.Errorf("bolt: compact: %w", err)
	}
	res := CompactResult{Before: st.Size()}
	// Not read-only: the exclusive lock keeps a relay from starting on the
	// old file while it is copied.
	src, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			err = fmt.Errorf("%w (stop the relay using it first)", err)
		}
		return res, fmt.Errorf("bolt: compact: open %s: %w", path, err)
	}
	defer src.Close()
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("bolt: compact: %w", err)
	}
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return res, fmt.Errorf("bolt: compact: create %s: %w", tmp, err)
	}
	if err := bbolt.Compact(dst, src, compactTxSize); err != nil {
		dst.Close()
		os.Remove(tmp)
		return res, fmt.Errorf("bolt: compact: copy: %w", err)
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("bolt: compact: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("bolt: compact: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return res, fmt.Errorf("bolt: compact: %w", err)
	}
	if st, err = os.Stat(path); err != nil {
		return res, fmt.Errorf("bolt: compact: %w", err)
	}
	res.After = st.Size()
	return res, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
