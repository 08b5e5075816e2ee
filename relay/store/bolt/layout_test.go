package bolt

import (
	"bytes"
	"fmt"
	"testing"

	"go.etcd.io/bbolt"
)

// TestReaderGetFindsWhatBucketGetFinds looks keys up through one reader in
// orders that take get's every path (a step forward onto the key, past a
// missing key, further than nearSteps, backwards, off the end) and checks
// each answer against Bucket.Get, in a read-only and in a writable
// transaction.
func TestReaderGetFindsWhatBucketGetFinds(t *testing.T) {
	s := openTest(t, t.TempDir())
	key := func(i int) []byte { return fmt.Appendf(nil, "dlv_%04d", i) }
	// Even keys exist, odd ones do not; enough of them for several pages.
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		for i := 0; i < 2000; i += 2 {
			if err := b.Put(key(i), fmt.Appendf(nil, "v%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string][]int{
		"next keys":          {0, 2, 4, 6, 8, 10},
		"missing between":    {10, 11, 12, 13, 16},
		"beyond nearSteps":   {100, 100 + 2*nearSteps + 2, 900},
		"backwards":          {500, 498, 2, 1998, 0},
		"same key twice":     {40, 40, 40},
		"past the last key":  {1996, 1998, 1999, 2000, 2002, 4},
		"before the first":   {-1, 0, 1},
		"across page bounds": seq(300, 1700, 2),
	}
	for _, writable := range []bool{false, true} {
		for name, order := range orders {
			t.Run(fmt.Sprintf("writable=%v/%s", writable, name), func(t *testing.T) {
				tx, err := s.db.Begin(writable)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				r := readerOf(tx)
				for _, i := range order {
					k := key(i)
					if i < 0 {
						k = []byte("a") // sorts before every key
					}
					want := tx.Bucket(bucketDeliveries).Get(k)
					if got := r.get(&r.deliveries, bucketDeliveries, k); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
						t.Fatalf("get(%s) = %q, want %q", k, got, want)
					}
				}
			})
		}
	}
}

// TestReaderGetSeesItsTransactionsWrites checks get in a writable
// transaction after deletes and puts on either side of its last lookup: a
// cursor left where it was may step onto the wrong key once a write has
// shifted the keys under it.
func TestReaderGetSeesItsTransactionsWrites(t *testing.T) {
	s := openTest(t, t.TempDir())
	key := func(i int) []byte { return fmt.Appendf(nil, "dlv_%04d", i) }
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		r := readerOf(tx)
		for i := 0; i < 400; i += 2 {
			if err := b.Put(key(i), []byte("old")); err != nil {
				return err
			}
		}
		for i := 2; i < 400; i += 2 {
			if got := r.get(&r.deliveries, bucketDeliveries, key(i)); string(got) != "old" {
				return fmt.Errorf("get(%s) = %q, want old", key(i), got)
			}
			if err := b.Delete(key(i - 2)); err != nil {
				return err
			}
			if err := b.Put(key(i+1), []byte("new")); err != nil {
				return err
			}
			if got := r.get(&r.deliveries, bucketDeliveries, key(i+1)); string(got) != "new" {
				return fmt.Errorf("get(%s) = %q after putting it, want new", key(i+1), got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func seq(from, to, step int) []int {
	var out []int
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}

// TestDueIndexRemoveMatchesBucketDelete removes keys through one dueIndex,
// its cursor reused, between puts made in the same transaction, and checks
// that the index ends as Bucket.Delete would leave it: missing keys are
// no error and touch nothing, keys put after the cursor's last seek are
// found.
func TestDueIndexRemoveMatchesBucketDelete(t *testing.T) {
	s := openTest(t, t.TempDir())
	key := func(i int) []byte { return fmt.Appendf(nil, "due_%04d", i) }
	var left [][]byte
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := &batch{tx: tx}
		q, err := b.queue("crm")
		if err != nil {
			return err
		}
		if again, _ := b.queue("crm"); again != q {
			t.Error("a second queue call opened the index again")
		}
		for i := 0; i < 1000; i += 2 { // several pages of even keys
			if err := q.Put(key(i), empty); err != nil {
				return err
			}
		}
		steps := []struct {
			put    bool
			i      int
			before bool // the key exists before the step
		}{
			{i: 500, before: true},
			{i: 501},                // missing, between two keys
			{i: 2000},               // missing, past the last key
			{put: true, i: 501},     // put after the cursor's last seek
			{i: 501, before: true},  // found
			{i: 0, before: true},    // backwards, the first key
			{i: 998, before: true},  // the last key
			{i: 500},                // removed already
			{put: true, i: 1500},    // a new last key
			{i: 1500, before: true}, // found past where the index ended
		}
		for _, st := range steps {
			if got := q.Get(key(st.i)) != nil; got != st.before {
				t.Errorf("before step %+v: key present %v", st, got)
			}
			if st.put {
				err = q.Put(key(st.i), empty)
			} else {
				err = q.remove(key(st.i))
			}
			if err != nil {
				return fmt.Errorf("step %+v: %w", st, err)
			}
			if got := q.Get(key(st.i)) != nil; got != st.put {
				t.Errorf("after step %+v: key present %v", st, got)
			}
		}
		return q.ForEach(func(k, _ []byte) error {
			left = append(left, bytes.Clone(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 2; i < 998; i += 2 {
		if i != 500 {
			want = append(want, key(i))
		}
	}
	if len(left) != len(want) {
		t.Fatalf("%d keys left, want %d", len(left), len(want))
	}
	for i := range want {
		if !bytes.Equal(left[i], want[i]) {
			t.Fatalf("key %d left is %s, want %s", i, left[i], want[i])
		}
	}
}
