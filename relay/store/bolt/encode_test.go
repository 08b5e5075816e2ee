package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// tricky are strings that encoding/json escapes in its own ways.
var tricky = []string{
	"", "plain-ASCII_1001", `quote "`, `back\slash`, "1 < 2", "3 > 2", "a & b", "tab\tnewline\n\x00",
	"naïve café 日本", "bad utf-8 \xff\xfe", "line\u2028separator\u2029", "\x7f del",
}

func TestAppendNewEventMatchesMarshal(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 123456789, time.FixedZone("IST", 5*3600+1800))
	var recs []*eventRec
	for _, s := range tricky {
		recs = append(recs,
			&eventRec{Event: store.Event{ID: "evt_" + s, WebhookID: s, DedupeKey: s, ContentType: s,
				ReceivedAt: at, Destinations: []string{s, "b"}}, DeliveryIDs: []string{"dlv_1", s}},
			&eventRec{Event: store.Event{ID: s, WebhookID: "1001", ReceivedAt: at.Truncate(time.Second).UTC(), Parked: true}},
			&eventRec{Event: store.Event{ID: s, Destinations: []string{}}, DeliveryIDs: []string{}},
		)
	}
	recs = append(recs, filled(t, &eventRec{}).(*eventRec))
	for _, rec := range recs {
		want, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNewEvent(nil, rec); string(got) != string(want) {
			t.Errorf("appendNewEvent(%+v)\n got %s\nwant %s", rec, got, want)
		}
	}
}

func TestNewDeliveriesMatchMarshal(t *testing.T) {
	now := time.Now()
	ds, ids := newDeliveries("evt_01ABC", tricky, now)
	if len(ds) != len(tricky) || len(ids) != len(tricky) {
		t.Fatalf("newDeliveries made %d deliveries and %d ids for %d destinations", len(ds), len(ids), len(tricky))
	}
	for i, d := range ds {
		want, err := json.Marshal(d.rec)
		if err != nil {
			t.Fatal(err)
		}
		if string(d.json) != string(want) {
			t.Errorf("delivery to %q\n got %s\nwant %s", tricky[i], d.json, want)
		}
		if d.rec.ID != ids[i] || d.rec.Destination != tricky[i] || !d.rec.CreatedAt.Equal(now) {
			t.Errorf("delivery %d = %+v", i, d.rec)
		}
	}
}

// filled sets every exported field of the struct p points to (embedded
// structs included) to a non-zero value, so that a field added to the
// records later shows up in json.Marshal's output and the test comparing it
// with the hand-written encoder fails until the encoder learns it.
func filled(t *testing.T, p any) any {
	t.Helper()
	fill(t, reflect.ValueOf(p).Elem())
	return p
}

func fill(t *testing.T, v reflect.Value) {
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
			t.Fatalf("field %s of type %s: teach fill (and the encoders in encode.go) about it", sf.Name, sf.Type)
		}
	}
}

func TestAppendDeliveryMatchesMarshal(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 123456789, time.FixedZone("IST", 5*3600+1800))
	var recs []*deliveryRec
	for _, s := range tricky {
		recs = append(recs,
			&deliveryRec{Delivery: store.Delivery{ID: "dlv_" + s, EventID: s, Destination: s, State: store.DeliveryState(s),
				Attempts: 3, CreatedAt: at, DueAt: at.UTC(), LastStatus: 503, LastError: s, UpdatedAt: at}, Logged: 5, DeadAt: at.UnixNano()},
			&deliveryRec{Delivery: store.Delivery{ID: s, State: store.StatePending, Attempts: -1, LastStatus: -2}, Logged: -3, DeadAt: -4},
			&deliveryRec{Delivery: store.Delivery{ID: s, State: store.StateDelivered, Attempts: 1, UpdatedAt: at}, Logged: 1,
				Last: &store.Attempt{N: 1, At: at, Duration: time.Millisecond, Status: 502, Error: s, Response: s}},
			&deliveryRec{Delivery: store.Delivery{ID: s}, Last: &store.Attempt{}},
		)
	}
	recs = append(recs, filled(t, &deliveryRec{}).(*deliveryRec))
	for _, rec := range recs {
		want, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendDelivery(nil, rec)
		if !ok || string(got) != string(want) {
			t.Errorf("appendDelivery(%+v) = %v\n got %s\nwant %s", rec, ok, got, want)
		}
	}
}

func TestAppendAttemptMatchesMarshal(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 120000000, time.Local)
	var as []*store.Attempt
	for _, s := range tricky {
		as = append(as,
			&store.Attempt{N: 2, At: at, Duration: 1500 * time.Microsecond, Status: 500, Error: s, Response: s},
			&store.Attempt{N: 1, At: at.UTC(), Error: s},
			&store.Attempt{Response: s, Duration: -1, Status: -1},
		)
	}
	as = append(as, filled(t, &store.Attempt{}).(*store.Attempt))
	for _, a := range as {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendAttemptRec(nil, a)
		if !ok || string(got) != string(want) {
			t.Errorf("appendAttemptRec(%+v) = %v\n got %s\nwant %s", a, ok, got, want)
		}
	}
}

// TestEncodersRefuseWhatMarshalRefuses covers times outside JSON's range:
// the encoders step aside so that json.Marshal reports them.
func TestEncodersRefuseWhatMarshalRefuses(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
	} {
		rec := &deliveryRec{Delivery: store.Delivery{ID: "dlv_1", DueAt: at}}
		if _, err := json.Marshal(rec); err == nil {
			t.Fatalf("json.Marshal accepts %v; the test needs a time it refuses", at)
		}
		if _, ok := appendDelivery(nil, rec); ok {
			t.Errorf("appendDelivery encoded due_at %v, which json.Marshal refuses", at)
		}
		if _, ok := appendAttemptRec(nil, &store.Attempt{At: at}); ok {
			t.Errorf("appendAttemptRec encoded at %v, which json.Marshal refuses", at)
		}
		if _, ok := appendDelivery(nil, &deliveryRec{Delivery: store.Delivery{ID: "dlv_1"}, Last: &store.Attempt{At: at}}); ok {
			t.Errorf("appendDelivery encoded a last attempt at %v, which json.Marshal refuses", at)
		}
	}
}
