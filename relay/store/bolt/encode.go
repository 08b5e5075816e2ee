package bolt

import (
	"strconv"
	"time"

	"github.com/relaygw/relay/internal/jsonenc"
	"github.com/relaygw/relay/relay/store"
)

// The attempts bucket keeps JSON records (delivery and event records are
// binary, binary.go). An outcome that moves a delivery's newest attempt
// there encodes one, and encoding/json spends most of that on reflection,
// so appendAttemptRec writes it directly. The bytes are json.Marshal's
// (encode_test.go checks it field by field), and json.Unmarshal reads them.

// appendAttemptRec encodes a as json.Marshal does. ok is false when its time
// is outside what JSON times allow (years 0 to 9999); json.Marshal then
// reports the error.
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

// appendTime is time.Time.MarshalJSON without its allocation.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
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
