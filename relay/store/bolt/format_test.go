package bolt

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// writeFile makes dir's data file as bbolt left it: with marker as the
// format version (none when nil), and a key in the events bucket when data.
func writeFile(t *testing.T, dir string, marker []byte, data bool) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if marker != nil {
			if err := meta.Put(versionKey, marker); err != nil {
				return err
			}
		}
		events, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil || !data {
			return err
		}
		return events.Put([]byte("evt_1"), []byte("a record"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// marker reads the format version of dir's data file.
func marker(t *testing.T, dir string) string {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	err = db.View(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			v = string(meta.Get(versionKey))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A file that holds data under another format, or under none, is refused
// with a message that names the file and both formats and says what to do,
// and is left as it was.
func TestOpenRefusesAnotherFormat(t *testing.T) {
	for _, tc := range []struct {
		name   string
		marker []byte
		want   string
	}{
		{"older", []byte("3"), `storage format "3", this relay reads format "` + formatVersion + `"`},
		{"unknown", []byte("99"), `storage format "99", this relay reads format "` + formatVersion + `"`},
		{"none", nil, `no storage format marker, this relay reads format "` + formatVersion + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tc.marker, true)
			s, err := Open(dir, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			var fe *formatError
			if !errors.As(err, &fe) {
				t.Errorf("Open: %v, want a formatError", err)
			}
			path := filepath.Join(dir, FileName)
			for _, want := range []string{"bolt: open " + path + ": ", tc.want, "written by another version of relay",
				"drain it with that version, or remove it"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open: %v\nwant it to contain %q", err, want)
				}
			}
			if got := marker(t, dir); got != string(tc.marker) {
				t.Errorf("marker after the refused Open = %q, want %q as it was", got, tc.marker)
			}
		})
	}
}

// A new file, and one that holds nothing (no buckets, or buckets without
// keys, under another marker or none), gets the marker; a file with the
// marker opens with its data.
func TestOpenMarksEmptyFilesAndOpensMarkedOnes(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T, dir string){
		"new":                     func(*testing.T, string) {},
		"empty buckets":           func(t *testing.T, dir string) { writeFile(t, dir, nil, false) },
		"no buckets (bbolt's)":    func(t *testing.T, dir string) { writeFile(t, dir, nil, false); emptyBolt(t, dir) },
		"another marker, no data": func(t *testing.T, dir string) { writeFile(t, dir, []byte("3"), false) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			setup(t, dir)
			s := openTest(t, dir)
			res := acceptOne(t, s, "a")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := marker(t, dir); got != formatVersion {
				t.Fatalf("marker = %q, want %q", got, formatVersion)
			}
			s = openTest(t, dir)
			defer s.Close()
			if _, err := s.Event(t.Context(), res.EventID); err != nil {
				t.Fatalf("Event after reopening: %v", err)
			}
			wantCounts(t, s, map[string]int{"a": 1})
		})
	}
}

// emptyBolt deletes every bucket of dir's file.
func emptyBolt(t *testing.T, dir string) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		var names [][]byte
		_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			names = append(names, append([]byte(nil), name...))
			return nil
		})
		for _, n := range names {
			if err := tx.DeleteBucket(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
