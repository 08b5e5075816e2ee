package bolt

import (
	"strconv"
	"time"

	"github.com/relaygw/relay/internal/jsonenc"
	"github.com/relaygw/relay/relay/store"
)

// Accept encodes an event record for every callback, and encoding/json
// spends most of that time on reflection. These encoders write the JSON
// records that Relay creates directly (delivery records are binary,
// binary.go). They produce what json.Marshal produces for the same values
// (encode_test.go checks it through acceptOp), and json.Unmarshal reads
// them back as always.

// appendNewEvent encodes the eventRec that acceptOp creates.
func appendNewEvent(b []byte, rec *eventRec) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, rec.ID)
	b = append(b, `,"webhook_id":`...)
	b = jsonenc.AppendString(b, rec.WebhookID)
	if rec.DedupeKey != "" {
		b = append(b, `,"dedupe_key":`...)
		b = jsonenc.AppendString(b, rec.DedupeKey)
	}
	if rec.ContentType != "" {
		b = append(b, `,"content_type":`...)
		b = jsonenc.AppendString(b, rec.ContentType)
	}
	b = append(b, `,"received_at":`...)
	b = appendTime(b, rec.ReceivedAt)
	b = append(b, `,"destinations":`...)
	b = appendStrings(b, rec.Destinations)
	if rec.Parked {
		b = append(b, `,"parked":true`...)
	}
	if len(rec.DeliveryIDs) > 0 {
		b = append(b, `,"delivery_ids":`...)
		b = appendStrings(b, rec.DeliveryIDs)
	}
	return append(b, '}')
}

// appendTime is time.Time.MarshalJSON without its allocation.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendStrings encodes a string slice; nil is null, as json.Marshal has it.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, s)
	}
	return append(b, ']')
}

// An outcome that moves a delivery's newest attempt to the attempts bucket
// encodes an attempt record, so it is written directly too, with the same
// guarantee: the bytes are json.Marshal's (encode_test.go checks it field by
// field).

// appendAttemptRec encodes a as json.Marshal does; ok as for appendDelivery.
func appendAttemptRec(b []byte, a *store.Attempt) (_ []byte, ok bool) {
	if !jsonTime(a.At) {
		return b, false
	}
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(a.N), 10)
	b = append(b, `,"at":`...)
	b = appendTime(b, a.At)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(a.Duration), 10)
	if a.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(a.Status), 10)
	}
	if a.Error != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, a.Error)
	}
	if a.Response != "" {
		b = append(b, `,"response":`...)
		b = jsonenc.AppendString(b, a.Response)
	}
	return append(b, '}'), true
}

// jsonTime reports whether time.Time.MarshalJSON accepts t: a four-digit
// year and a zone offset within a day.
func jsonTime(t time.Time) bool {
	if y := t.Year(); y < 0 || y > 9999 {
		return false
	}
	_, off := t.Zone()
	return off > -24*3600 && off < 24*3600
}
