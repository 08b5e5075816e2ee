package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// tricky are strings that need care in any encoding.
var tricky = []string{
	"", "plain-ASCII_1001", `quote "`, `back\slash`, "1 < 2", "a & b", "tab\tnewline\n\x00",
	"naïve café 日本", "bad utf-8 \xff\xfe", "line\u2028separator\u2029", "\x7f del",
}

// filled sets every exported field of the struct p points to (embedded
// structs included) to a non-zero value, so that a field added to the
// records later is lost by the codec, and the round trip fails until the
// codec learns it. Fields tagged json:"-" (a delivery's lease, an event's
// body) are not part of a record.
func filled(t testing.TB, p any) any {
	t.Helper()
	fill(t, reflect.ValueOf(p).Elem())
	return p
}

func fill(t testing.TB, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() || sf.Tag.Get("json") == "-" {
			continue
		}
		switch {
		case sf.Type == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(time.Date(2024, 2, 29, 23, 59, 59, 1, time.UTC)))
		case sf.Anonymous && f.Kind() == reflect.Struct:
			fill(t, f)
		case f.Kind() == reflect.String:
			f.SetString("v-" + sf.Name)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(7)
		case f.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf([]string{"a-" + sf.Name, "b"}))
		case f.Kind() == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(sf.Type.Elem()))
			fill(t, f.Elem())
		default:
			t.Fatalf("field %s of type %s: teach fill (and codec.go) about it", sf.Name, sf.Type)
		}
	}
}

// utc is t as the codec reads it back: in UTC, without a monotonic reading.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// inUTC is rec with every time as utc has it.
func inUTC(rec deliveryRec) deliveryRec {
	rec.CreatedAt, rec.DueAt, rec.UpdatedAt = utc(rec.CreatedAt), utc(rec.DueAt), utc(rec.UpdatedAt)
	if rec.Last != nil {
		a := *rec.Last
		a.At = utc(a.At)
		rec.Last = &a
	}
	return rec
}

// farTimes are times far from now that the record form holds too: before
// and after the span of Unix nanoseconds, and the extremes of a year.
var farTimes = []time.Time{
	time.Date(1600, 1, 1, 0, 0, 0, 1, time.UTC),
	time.Date(2300, 1, 1, 0, 0, 0, 999999999, time.UTC),
	time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC),
	time.Date(99999, 12, 31, 23, 59, 59, 0, time.FixedZone("far", 24*3600)),
	time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64),
}

// deliveryRecords are delivery records in every shape the store writes,
// with strings that need care and far times, and one with every field set.
func deliveryRecords(t testing.TB) []*deliveryRec {
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
	for _, far := range farTimes {
		recs = append(recs, &deliveryRec{Delivery: store.Delivery{ID: "dlv_far", CreatedAt: far, DueAt: far, UpdatedAt: far},
			Last: &store.Attempt{At: far}})
	}
	return append(recs, filled(t, &deliveryRec{}).(*deliveryRec))
}

func TestDeliveryRoundTrip(t *testing.T) {
	for _, rec := range deliveryRecords(t) {
		v := encodeDelivery(rec)
		var got deliveryRec
		if err := decodeDelivery(rec.ID, v, &got); err != nil {
			t.Fatalf("decodeDelivery(%x): %v", v, err)
		}
		if want := inUTC(*rec); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestAttemptRoundTrip(t *testing.T) {
	for _, rec := range deliveryRecords(t) {
		if rec.Last == nil {
			continue
		}
		var got store.Attempt
		if err := decodeAttempt(encodeAttempt(rec.Last), &got); err != nil {
			t.Fatalf("decodeAttempt: %v", err)
		}
		if want := *inUTC(*rec).Last; got != want {
			t.Errorf("round trip\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 123456789, time.FixedZone("IST", 5*3600+1800))
	var recs []*eventRec
	for _, s := range tricky {
		recs = append(recs,
			&eventRec{Event: store.Event{ID: "evt_" + s, WebhookID: s, DedupeKey: s, ContentType: s,
				ReceivedAt: at, Destinations: []string{s, "b"}, Body: []byte(s)}, DeliveryIDs: []string{"dlv_1", s}},
			&eventRec{Event: store.Event{ID: s, WebhookID: "1001", ReceivedAt: time.Now(), Parked: true}},
			&eventRec{Event: store.Event{ID: s, Destinations: []string{}}, DeliveryIDs: []string{}},
			&eventRec{Event: store.Event{ID: s, Destinations: []string{""}}, DeliveryIDs: []string{"", ""}},
		)
	}
	for _, far := range farTimes {
		recs = append(recs, &eventRec{Event: store.Event{ID: "evt_far", ReceivedAt: far}})
	}
	full := filled(t, &eventRec{}).(*eventRec)
	full.Body = make([]byte, 70000) // a length that takes three bytes
	recs = append(recs, full)
	for _, rec := range recs {
		v := encodeEvent(rec)
		var got eventRec
		if err := decodeEvent(rec.ID, v, &got, true); err != nil {
			t.Fatalf("decodeEvent(%x): %v", v, err)
		}
		want := *rec
		want.ReceivedAt = utc(want.ReceivedAt)
		if want.Body == nil {
			want.Body = []byte{} // a stored body is never nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip\n got %#v\nwant %#v", got, want)
		}
		if err := decodeEvent(rec.ID, v, &got, false); err != nil || got.Body != nil {
			t.Errorf("decodeEvent without the body: body %q, %v", got.Body, err)
		}
	}
}

// TestDecodersRefuseMalformed cuts and corrupts records: each must fail to
// decode with errBadRecord, never panic or read as another record.
func TestDecodersRefuseMalformed(t *testing.T) {
	v := encodeDelivery(filled(t, &deliveryRec{}).(*deliveryRec))
	for n := range len(v) {
		var rec deliveryRec
		if err := decodeDelivery("dlv_1", v[:n], &rec); !errors.Is(err, errBadRecord) {
			t.Errorf("first %d of %d bytes: %v, want errBadRecord", n, len(v), err)
		}
	}
	if err := decodeDelivery("dlv_1", append(v, 0), &deliveryRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("a byte too many: %v, want errBadRecord", err)
	}
	long := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // a string longer than the record
	if err := decodeDelivery("dlv_1", long, &deliveryRec{}); !errors.Is(err, errBadRecord) {
		t.Errorf("overlong string: %v, want errBadRecord", err)
	}

	a := encodeAttempt(&store.Attempt{N: 1, At: time.Now(), Status: 200, Response: "ok"})
	for n := range len(a) {
		if err := decodeAttempt(a[:n], &store.Attempt{}); !errors.Is(err, errBadRecord) {
			t.Errorf("attempt: first %d of %d bytes: %v, want errBadRecord", n, len(a), err)
		}
	}
	// n 1, then a time of 0 seconds and 1e9 nanoseconds.
	nanos := binary.AppendUvarint([]byte{2, 0}, 1e9)
	if err := decodeAttempt(append(nanos, 0, 0, 0, 0), &store.Attempt{}); !errors.Is(err, errBadRecord) {
		t.Errorf("attempt: 1e9 nanoseconds: %v, want errBadRecord", err)
	}

	// Without a body, so that every byte is the fields' and their length's.
	ev := encodeEvent(filled(t, &eventRec{}).(*eventRec))
	event := func(fields []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(fields))), fields...) }
	fields := ev[1:] // their length takes a byte
	if !bytes.Equal(event(fields), ev) {
		t.Fatalf("the event record is not its fields after their length: %x", ev)
	}
	for n := range len(ev) {
		if err := decodeEvent("evt_1", ev[:n], &eventRec{}, true); !errors.Is(err, errBadRecord) {
			t.Errorf("event: first %d of %d bytes: %v, want errBadRecord", n, len(ev), err)
		}
	}
	for n := range len(fields) {
		if err := decodeEvent("evt_1", event(fields[:n]), &eventRec{}, true); !errors.Is(err, errBadRecord) {
			t.Errorf("event: first %d of %d bytes of its fields: %v, want errBadRecord", n, len(fields), err)
		}
	}
	if err := decodeEvent("evt_1", event(append(fields, 0)), &eventRec{}, true); !errors.Is(err, errBadRecord) {
		t.Errorf("event: a byte too many in its fields: %v, want errBadRecord", err)
	}
	flag := bytes.Clone(fields)
	flag[len(flag)-1] = 2 // parked is 0 or 1
	if err := decodeEvent("evt_1", event(flag), &eventRec{}, true); !errors.Is(err, errBadRecord) {
		t.Errorf("event: parked flag 2: %v, want errBadRecord", err)
	}
	// Three empty strings, a time, then a list of 2^62 strings.
	huge := append([]byte{0, 0, 0, 0, 0}, binary.AppendUvarint(nil, 1<<62)...)
	if err := decodeEvent("evt_1", event(huge), &eventRec{}, true); !errors.Is(err, errBadRecord) {
		t.Errorf("event: overlong list: %v, want errBadRecord", err)
	}
}

// FuzzRecords feeds arbitrary bytes to the decoders: they must refuse or
// decode, never panic, and what they decode must survive being encoded and
// decoded again unchanged. (Bytes need not come back the same: a varint may
// be written longer than it needs.) Run it longer with
// go test -run '^$' -fuzz FuzzRecords ./relay/store/bolt/.
func FuzzRecords(f *testing.F) {
	for _, rec := range deliveryRecords(f) {
		f.Add(encodeDelivery(rec))
	}
	f.Add(encodeEvent(&eventRec{Event: store.Event{ID: "evt_1", WebhookID: "1001", ReceivedAt: time.Now(),
		Destinations: []string{"a", "b"}}, DeliveryIDs: []string{"dlv_1", "dlv_2"}}))
	f.Add(encodeAttempt(&store.Attempt{N: 1, At: time.Now(), Status: 200, Response: "ok"}))
	f.Fuzz(func(t *testing.T, v []byte) {
		var d, d2 deliveryRec
		if decodeDelivery("dlv_1", v, &d) == nil {
			again := encodeDelivery(&d)
			if decodeDelivery("dlv_1", again, &d2) != nil || !reflect.DeepEqual(d, d2) {
				t.Errorf("delivery %x decoded as %+v, then as %+v from %x", v, d, d2, again)
			}
		}
		var e, e2 eventRec
		if decodeEvent("evt_1", v, &e, true) == nil {
			again := encodeEvent(&e)
			if decodeEvent("evt_1", again, &e2, true) != nil || !reflect.DeepEqual(e, e2) {
				t.Errorf("event %x decoded as %+v, then as %+v from %x", v, e, e2, again)
			}
		}
		var a, a2 store.Attempt
		if decodeAttempt(v, &a) == nil {
			again := encodeAttempt(&a)
			if decodeAttempt(again, &a2) != nil || a != a2 {
				t.Errorf("attempt %x decoded as %+v, then as %+v from %x", v, a, a2, again)
			}
		}
	})
}
