package bolt

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// inUTC is rec with every time in UTC and without a monotonic reading: the
// binary form keeps instants, not zones.
func inUTC(rec deliveryRec) deliveryRec {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC().Round(0)
	}
	rec.CreatedAt, rec.DueAt, rec.UpdatedAt = utc(rec.CreatedAt), utc(rec.DueAt), utc(rec.UpdatedAt)
	if rec.Last != nil {
		a := *rec.Last
		a.At = utc(a.At)
		rec.Last = &a
	}
	return rec
}

// binaryRecords are delivery records in every shape the store writes, with
// strings that need care in any encoding, and one with every field set.
func binaryRecords(t testing.TB) []*deliveryRec {
	at := time.Date(2021, 4, 9, 16, 27, 39, 123456789, time.FixedZone("IST", 5*3600+1800))
	now := time.Now() // with a monotonic reading
	var recs []*deliveryRec
	for _, s := range tricky {
		recs = append(recs,
			&deliveryRec{Delivery: store.Delivery{ID: "dlv_" + s, EventID: s, Destination: s, State: store.DeliveryState(s),
				Attempts: 3, CreatedAt: at, DueAt: at.UTC(), LastStatus: 503, LastError: s, UpdatedAt: now}, Logged: 5, DeadAt: at.UnixNano()},
			&deliveryRec{Delivery: store.Delivery{ID: s, State: store.StatePending, Attempts: -1, LastStatus: -2}, Logged: -3, DeadAt: -4},
			&deliveryRec{Delivery: store.Delivery{ID: s, State: store.StateDelivered, Attempts: 1, UpdatedAt: at}, Logged: 1,
				Last: &store.Attempt{N: 1, At: at, Duration: time.Millisecond, Status: 502, Error: s, Response: s}},
			&deliveryRec{Delivery: store.Delivery{ID: s}, Last: &store.Attempt{Duration: -1}},
		)
	}
	// The first and last instants with Unix nanoseconds.
	first, last := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	recs = append(recs, &deliveryRec{Delivery: store.Delivery{ID: "dlv_edges", CreatedAt: first, DueAt: last, UpdatedAt: first},
		Last: &store.Attempt{At: last}})
	return append(recs, filled(t, &deliveryRec{}).(*deliveryRec))
}

func TestDeliveryBinaryRoundTrip(t *testing.T) {
	for _, rec := range binaryRecords(t) {
		v, ok := appendDeliveryBin(nil, rec)
		if !ok {
			t.Fatalf("appendDeliveryBin(%+v) refused", rec)
		}
		var got deliveryRec
		if err := decodeDelivery(v, &got); err != nil {
			t.Fatalf("decodeDelivery(%x): %v", v, err)
		}
		if want := inUTC(*rec); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestEventBinaryRoundTrip(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 123456789, time.FixedZone("IST", 5*3600+1800))
	var recs []*eventRec
	for _, s := range tricky {
		recs = append(recs,
			&eventRec{Event: store.Event{ID: "evt_" + s, WebhookID: s, DedupeKey: s, ContentType: s,
				ReceivedAt: at, Destinations: []string{s, "b"}}, DeliveryIDs: []string{"dlv_1", s}},
			&eventRec{Event: store.Event{ID: s, WebhookID: "1001", ReceivedAt: time.Now(), Parked: true}},
			&eventRec{Event: store.Event{ID: s, Destinations: []string{}}, DeliveryIDs: []string{}},
			&eventRec{Event: store.Event{ID: s, Destinations: []string{""}}, DeliveryIDs: []string{"", ""}},
		)
	}
	recs = append(recs, filled(t, &eventRec{}).(*eventRec))
	for _, rec := range recs {
		v, ok := appendEventBin(nil, rec)
		if !ok {
			t.Fatalf("appendEventBin(%+v) refused", rec)
		}
		var got eventRec
		if err := decodeEvent(v, &got); err != nil {
			t.Fatalf("decodeEvent(%x): %v", v, err)
		}
		want := *rec
		if !want.ReceivedAt.IsZero() {
			want.ReceivedAt = want.ReceivedAt.UTC().Round(0)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %#v\nwant %#v", got, want)
		}
	}
}

// TestDeliveryBinaryRefusesMalformed cuts and corrupts records: each must
// fail to decode with errBadRecord, never panic or read as another record.
func TestDeliveryBinaryRefusesMalformed(t *testing.T) {
	v, _ := appendDeliveryBin(nil, filled(t, &deliveryRec{}).(*deliveryRec))
	for n := 1; n < len(v); n++ {
		var rec deliveryRec
		if err := decodeDelivery(v[:n], &rec); !errors.Is(err, errBadRecord) {
			t.Errorf("first %d of %d bytes: %v, want errBadRecord", n, len(v), err)
		}
	}
	if err := decodeDelivery(append(v, 0), &deliveryRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("a byte too many: %v, want errBadRecord", err)
	}
	long := append([]byte{recBinary}, 0xff, 0xff, 0xff, 0xff, 0x0f) // a string longer than the record
	if err := decodeDelivery(long, &deliveryRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("overlong string: %v, want errBadRecord", err)
	}

	ev, _ := appendEventBin(nil, filled(t, &eventRec{}).(*eventRec))
	for n := 1; n < len(ev); n++ {
		if err := decodeEvent(ev[:n], &eventRec{}); !errors.Is(err, errBadRecord) {
			t.Errorf("event: first %d of %d bytes: %v, want errBadRecord", n, len(ev), err)
		}
	}
	if err := decodeEvent(append(ev, 0), &eventRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("event: a byte too many: %v, want errBadRecord", err)
	}
	flag := append([]byte(nil), ev...)
	flag[len(flag)-1] = 2 // parked is 0 or 1
	if err := decodeEvent(flag, &eventRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("event: parked flag 2: %v, want errBadRecord", err)
	}
	// Four empty strings, a zero time, then a list of 2^62 strings.
	huge := append([]byte{recBinary, 0, 0, 0, 0, 0}, binary.AppendUvarint(nil, 1<<62)...)
	if err := decodeEvent(huge, &eventRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("event: overlong list: %v, want errBadRecord", err)
	}
}

// TestDeliveryOutsideBinaryTimes covers times without Unix nanoseconds: the
// binary forms refuse them, and putDelivery and putEvent write JSON instead,
// which reads back the same. A new file's records are binary otherwise.
func TestRecordsOutsideBinaryTimes(t *testing.T) {
	s := openTest(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	for _, at := range []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		for _, rec := range []*deliveryRec{
			{Delivery: store.Delivery{ID: "dlv_due", State: store.StatePending, DueAt: at}},
			{Delivery: store.Delivery{ID: "dlv_last", State: store.StateDelivered}, Last: &store.Attempt{N: 1, At: at}},
		} {
			if _, ok := appendDeliveryBin(nil, rec); ok {
				t.Errorf("appendDeliveryBin took %v", at)
			}
			var got *deliveryRec
			err := s.db.Update(func(tx *bbolt.Tx) error {
				if err := putDelivery(tx, rec); err != nil {
					return err
				}
				if v := tx.Bucket(bucketDeliveries).Get([]byte(rec.ID)); len(v) == 0 || v[0] != '{' {
					t.Errorf("%s at %v stored as %q, want JSON", rec.ID, at, v)
				}
				var err error
				got, err = getDelivery(tx, rec.ID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inUTC(*got), inUTC(*rec)) {
				t.Errorf("read back\n got %+v\nwant %+v", got, rec)
			}
		}
		ev := &eventRec{Event: store.Event{ID: "evt_far", ReceivedAt: at, Destinations: []string{"sink"}}}
		if _, ok := appendEventBin(nil, ev); ok {
			t.Errorf("appendEventBin took %v", at)
		}
		err := s.db.Update(func(tx *bbolt.Tx) error {
			if err := putEvent(tx, ev); err != nil {
				return err
			}
			if v := tx.Bucket(bucketEvents).Get([]byte(ev.ID)); len(v) == 0 || v[0] != '{' {
				t.Errorf("event at %v stored as %q, want JSON", at, v)
			}
			got, err := getEventMeta(tx, ev.ID)
			if err == nil && (!got.ReceivedAt.Equal(at) || !reflect.DeepEqual(got.Destinations, ev.Destinations)) {
				t.Errorf("event read back %+v, want %+v", got, ev)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Accept(t.Context(), event(1), []string{"sink"}, store.Dedupe{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		ev, err := getEvent(tx, res.EventID)
		if err != nil {
			return err
		}
		if v := tx.Bucket(bucketDeliveries).Get([]byte(ev.DeliveryIDs[0])); len(v) == 0 || v[0] != recBinary {
			t.Errorf("a new delivery stored as %q, want the binary form", v)
		}
		if v := tx.Bucket(bucketEvents).Get([]byte(ev.ID)); len(v) == 0 || v[0] != recBinary {
			t.Errorf("a new event stored as %q, want the binary form", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFormat2FileReadsAndUpgrades opens a file as a relay of format 2 left
// it (event and delivery records in JSON): Open marks it format 3, and its deliveries
// lease, finish (their records then binary) and read as before.
func TestFormat2FileReadsAndUpgrades(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	var ids []string
	for range 3 {
		res := acceptOne(t, s, "sink")
		ids = append(ids, rec0(t, s, res.EventID))
	}
	// Rewrite every event and delivery record as JSON, and the marker as 2.
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, id := range ids {
			rec, err := getDelivery(tx, id)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketDeliveries).Put([]byte(id), marshal(t, rec)); err != nil {
				return err
			}
			ev, err := getEventMeta(tx, rec.EventID)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketEvents).Put([]byte(ev.ID), marshal(t, ev)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put([]byte("version"), []byte("2"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	t.Cleanup(func() { _ = s.Close() })
	stored := func(id string) (version string, first byte) {
		t.Helper()
		err := s.db.View(func(tx *bbolt.Tx) error {
			version = string(tx.Bucket(bucketMeta).Get([]byte("version")))
			first = tx.Bucket(bucketDeliveries).Get([]byte(id))[0]
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return version, first
	}
	if v, first := stored(ids[0]); v != "3" || first != '{' {
		t.Fatalf("after Open: format %q, record starts %q; want 3 and a JSON record left as it was", v, first)
	}
	ctx := t.Context()
	ds, err := s.Lease(ctx, "sink", 3, time.Minute)
	if err != nil || len(ds) != 3 {
		t.Fatalf("Lease: %d deliveries, %v", len(ds), err)
	}
	for _, d := range ds {
		if d.Event == nil || len(d.Event.Body) == 0 || d.State != store.StatePending {
			t.Fatalf("leased %+v", d)
		}
		if err := s.Complete(ctx, d, store.Attempt{At: time.Now(), Status: 200, Response: "ok"}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
	}
	for _, id := range ids {
		if _, first := stored(id); first != recBinary {
			t.Errorf("%s after its outcome starts %q, want the binary form", id, first)
		}
	}
	rec, err := s.Event(ctx, ds[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	d := rec.Deliveries[0]
	if d.State != store.StateDelivered || len(d.AttemptLog) != 1 || d.AttemptLog[0].Response != "ok" || d.CreatedAt.IsZero() {
		t.Errorf("delivery after the upgrade: %+v", d)
	}
}

// FuzzBinaryRecords feeds arbitrary bytes to the binary decoders: they
// must refuse or decode, never panic, and what they decode must survive
// being encoded and decoded again unchanged. (Bytes need not come back the
// same: a varint may be written longer than it needs.) Run it longer with
// go test -run '^$' -fuzz FuzzBinaryRecords ./relay/store/bolt/.
func FuzzBinaryRecords(f *testing.F) {
	for _, rec := range binaryRecords(f) {
		v, _ := appendDeliveryBin(nil, rec)
		f.Add(v[1:])
	}
	ev, _ := appendEventBin(nil, &eventRec{Event: store.Event{ID: "evt_1", WebhookID: "1001", ReceivedAt: time.Now(),
		Destinations: []string{"a", "b"}}, DeliveryIDs: []string{"dlv_1", "dlv_2"}})
	f.Add(ev[1:])
	f.Fuzz(func(t *testing.T, b []byte) {
		v := append([]byte{recBinary}, b...)
		var d, d2 deliveryRec
		if decodeDelivery(v, &d) == nil {
			again, ok := appendDeliveryBin(nil, &d)
			if !ok || decodeDelivery(again, &d2) != nil || !reflect.DeepEqual(d, d2) {
				t.Errorf("delivery %x decoded as %+v, then as %+v from %x", v, d, d2, again)
			}
		}
		var e, e2 eventRec
		if decodeEvent(v, &e) == nil {
			again, ok := appendEventBin(nil, &e)
			if !ok || decodeEvent(again, &e2) != nil || !reflect.DeepEqual(e, e2) {
				t.Errorf("event %x decoded as %+v, then as %+v from %x", v, e, e2, again)
			}
		}
	})
}
