package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// TestDecodeMatchesUnmarshal decodes records written by the encoders, and
// variants that only encoding/json reads, both ways and wants the same
// record (or an error from both).
func TestDecodeMatchesUnmarshal(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 123456789, time.FixedZone("IST", 5*3600+1800))
	var deliveries, events []string
	for _, s := range tricky {
		d := marshal(t, &deliveryRec{Delivery: store.Delivery{ID: "dlv_" + s, EventID: s, Destination: s,
			State: store.StateDead, Attempts: 3, CreatedAt: at, DueAt: at.UTC(), LastStatus: 503, LastError: s, UpdatedAt: at},
			Logged: 5, DeadAt: at.UnixNano()})
		e := marshal(t, &eventRec{Event: store.Event{ID: "evt_" + s, WebhookID: s, DedupeKey: s, ContentType: s,
			ReceivedAt: at, Destinations: []string{s, "b"}, Parked: true}, DeliveryIDs: []string{"dlv_1", s}})
		dl := marshal(t, &deliveryRec{Delivery: store.Delivery{ID: "dlv_" + s, State: store.StateDelivered, Attempts: 1},
			Logged: 1, Last: &store.Attempt{N: 1, At: at, Duration: 3 * time.Millisecond, Status: 200, Error: s, Response: s}})
		deliveries, events = append(deliveries, string(d), string(dl)), append(events, string(e))
	}
	fd := marshal(t, filled(t, &deliveryRec{}))
	fe := marshal(t, filled(t, &eventRec{}))
	deliveries = append(deliveries, string(fd),
		`{}`, `{"id":"a"}`, ` {"id":"a"}`, `{"id" : "a"}`, `{"id":"a",}`, `{"id":"a"}x`, `{"ID":"a"}`, `{"id":"a","other":1}`,
		`{"attempts":007}`, `{"attempts":-0}`, `{"attempts":1e3}`, `{"attempts":12345678901234567890}`, `{"attempts":"1"}`,
		`{"dead_at":-1234567890123456789}`, `{"dead_at":123456789012345678}`, `{"dead_at":9223372036854775807}`, `{"dead_at":9223372036854775808}`, `{"dead_at":-9223372036854775808}`, `{"id":null}`, `{"id":"a\u0062"}`,
		`{"due_at":"2021-04-09T16:27:39Z"}`, `{"due_at":"2021-04-09 16:27:39Z"}`, `{"due_at":"2021-04-09T16:27:39+24:00"}`,
		`{"id":"a","id":"b"}`, `{"id":"unterminated}`, `{"id":"a"`, `[]`, ``,
		`{"last":null}`, `{"last":{}}`, `{"last":{"n":1,"status":200}}`, `{"last":{"n":1,"other":2}}`, `{"last":{"n":1}x}`,
		`{"last":{"n":1}`, `{"last":{"n":1,}}`, `{"last":[]}`, `{"last":{"duration_ns":-5,"at":"2021-04-09T16:27:39Z"},"id":"a"}`,
		`{"last":{"n":1},"last":{"status":3}}`)
	events = append(events, string(fe),
		`{"destinations":null}`, `{"destinations":[]}`, `{"destinations":["a",]}`, `{"destinations":["a" ,"b"]}`,
		`{"delivery_ids":[]}`, `{"parked":false}`, `{"parked":tru}`, `{"parked":1}`, `{"received_at":"2021-04-09T16:27:39.5+05:30"}`)
	fast := 0
	for _, v := range deliveries {
		var want, got deliveryRec
		wantErr := json.Unmarshal([]byte(v), &want)
		gotErr := decodeDelivery([]byte(v), &got)
		if (wantErr != nil) != (gotErr != nil) || (wantErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("decodeDelivery(%s)\n got %+v, %v\nwant %+v, %v", v, got, gotErr, want, wantErr)
		}
		if fastDelivery([]byte(v), &deliveryRec{}) {
			fast++
		}
	}
	for _, v := range events {
		var want, got eventRec
		wantErr := json.Unmarshal([]byte(v), &want)
		gotErr := decodeEvent([]byte(v), &got)
		if (wantErr != nil) != (gotErr != nil) || (wantErr == nil && !reflect.DeepEqual(got, want)) {
			t.Errorf("decodeEvent(%s)\n got %+v, %v\nwant %+v, %v", v, got, gotErr, want, wantErr)
		}
		if fastEvent([]byte(v), &eventRec{}) {
			fast++
		}
	}
	if fast < 10 {
		t.Errorf("only %d records took the fast path; the test no longer covers it", fast)
	}
}

// TestFastDecodeTakesEncodedRecords checks that what the encoders write (and
// what relays before format 3 wrote for deliveries) for ordinary ids and
// names is read without encoding/json.
func TestFastDecodeTakesEncodedRecords(t *testing.T) {
	now := time.Now()
	for _, rec := range []*deliveryRec{
		{Delivery: store.Delivery{ID: "dlv_1", EventID: "evt_1", Destination: "sink", State: store.StatePending,
			CreatedAt: now, DueAt: now, UpdatedAt: now}},
		{Delivery: store.Delivery{ID: "dlv_1", State: store.StateDead, LastStatus: 500,
			LastError: "status 500", CreatedAt: now, DueAt: now, UpdatedAt: now}, Logged: 2, DeadAt: now.UnixNano()},
		{Delivery: store.Delivery{ID: "dlv_1", State: store.StateDelivered, Attempts: 1,
			LastStatus: 200, CreatedAt: now, DueAt: now, UpdatedAt: now}, Logged: 1,
			Last: &store.Attempt{N: 1, At: now, Duration: time.Millisecond, Status: 200, Response: "accepted"}},
	} {
		if d := marshal(t, rec); !fastDelivery(d, &deliveryRec{}) {
			t.Errorf("fastDelivery(%s) fell back to encoding/json", d)
		}
	}
	e := marshal(t, &eventRec{Event: store.Event{ID: "evt_1", WebhookID: "1001", ContentType: "application/json",
		ReceivedAt: now, Destinations: []string{"a", "b"}}, DeliveryIDs: []string{"dlv_1", "dlv_2"}})
	if !fastEvent(e, &eventRec{}) {
		t.Errorf("fastEvent(%s) fell back to encoding/json", e)
	}
}

// marshal is json.Marshal, which wrote the same bytes as the JSON delivery
// encoder of the relays before format 3.
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A record decoded into one that held another comes out as it would into a
// fresh one, whichever way it is stored: binary, JSON the fast decoder
// reads, or JSON only encoding/json reads (the trailing space).
func TestDecodeOverwritesRecord(t *testing.T) {
	full := filled(t, &deliveryRec{}).(*deliveryRec)
	sparse := &deliveryRec{Delivery: store.Delivery{ID: "dlv_1", State: store.StatePending}}
	bin, err := encodeDelivery(sparse)
	if err != nil {
		t.Fatal(err)
	}
	js := marshal(t, sparse)
	for name, v := range map[string][]byte{"binary": bin, "json": js, "json, slow path": append(js, ' ')} {
		var want, got deliveryRec
		if err := decodeDelivery(v, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got = *full
		if err := decodeDelivery(v, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s delivery decoded over a full record:\n got %+v\nwant %+v", name, got, want)
		}
	}

	fullEv := filled(t, &eventRec{}).(*eventRec)
	sparseEv := &eventRec{Event: store.Event{ID: "evt_1"}}
	binEv, err := encodeEvent(sparseEv)
	if err != nil {
		t.Fatal(err)
	}
	jsEv := marshal(t, sparseEv)
	for name, v := range map[string][]byte{"binary": binEv, "json": jsEv, "json, slow path": append(jsEv, ' ')} {
		var want, got eventRec
		if err := decodeEvent(v, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got = *fullEv
		if err := decodeEvent(v, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s event decoded over a full record:\n got %+v\nwant %+v", name, got, want)
		}
	}
}
