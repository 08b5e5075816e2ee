package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store/bolt"
)

// A data file that another version of relay wrote (format marker "3",
// with data) stops `relay serve` with a message that names the file and
// both formats and says what to do, and leaves the file as it was.
func TestServeRefusesAnotherStorageFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, bolt.FileName)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("version"), []byte("3")); err != nil {
			return err
		}
		events, err := tx.CreateBucket([]byte("events"))
		if err != nil {
			return err
		}
		return events.Put([]byte("evt_1"), []byte("a record of format 3"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runBin(t, "serve", "-config", compactConfig(t, dir),
		"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("relay serve exited %d, want 1; stderr:\n%s", code, stderr)
	}
	// The log's text format quotes the error, so its quotes come escaped.
	for _, want := range []string{"cannot start", path + `: storage format \"3\", this relay reads format \"`,
		"written by another version of relay", "drain it with that version, or remove it"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != string(before) {
		t.Errorf("the refused file changed (%v)", err)
	}
}
