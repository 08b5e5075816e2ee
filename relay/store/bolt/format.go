package bolt

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// versionKey is the meta key of the format marker.
var versionKey = []byte("version")

// initFile creates the buckets a file lacks and marks it formatVersion, or
// refuses it when it holds data under another marker or none. There is no
// migration: data in another format is refused, never read as this one. A
// file that holds nothing is this relay's to mark, whatever its marker.
func initFile(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		var found []byte
		if meta := tx.Bucket(bucketMeta); meta != nil {
			found = meta.Get(versionKey)
		}
		current := string(found) == formatVersion
		if !current && holdsData(tx) {
			return &formatError{found: string(found), marked: found != nil}
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		if !current {
			return tx.Bucket(bucketMeta).Put(versionKey, []byte(formatVersion))
		}
		return nil
	})
}

// holdsData reports whether a bucket other than meta holds a key.
func holdsData(tx *bbolt.Tx) bool {
	data := false
	_ = tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		if string(name) != string(bucketMeta) {
			if k, _ := b.Cursor().First(); k != nil {
				data = true
			}
		}
		return nil
	})
	return data
}

// formatError is a file that holds data in a storage format this relay
// does not read (found, unless not marked): another version of relay
// wrote it. found is a copy: the marker lives in the file's memory map.
type formatError struct {
	found  string
	marked bool
}

func (e *formatError) Error() string {
	what := fmt.Sprintf("storage format %q", e.found)
	if !e.marked {
		what = "no storage format marker"
	}
	return fmt.Sprintf("%s, this relay reads format %q: the file was written by another version of relay; "+
		"drain it with that version, or remove it if nothing in it is still needed", what, formatVersion)
}
