package bolt

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// A delivery record is rewritten by every outcome and read by every lease,
// and its size is most of what an outcome's commit writes: in JSON, with
// three or four RFC 3339 times, a delivered record is about 400 bytes and its
// encoding formats every time again. Since format 3 it is written in the
// binary form below, about a third of that, and so is the event record,
// which every lease reads too. Records written before (JSON, which starts
// with '{') still read, through decode.go; a record with a time the binary
// form cannot hold (outside what Unix nanoseconds span, 1677-09-21 to
// 2262-04-11) is written as JSON too.
//
// The binary forms, after their tag byte:
//
//	delivery  strings id, event_id, destination, state, last_error;
//	          varints attempts, last_status, logged, dead_at;
//	          times created_at, due_at, updated_at;
//	          last: 0, or 1 and varint n, time at, varint duration_ns,
//	          varint status, strings error and response
//	event     strings id, webhook_id, dedupe_key, content_type;
//	          time received_at; lists destinations, delivery_ids;
//	          parked: 0 or 1
//
// A string is a uvarint length and its bytes; a time is 0 for the zero
// time, else 1 and the varint of its Unix nanoseconds; a list is 0 for nil,
// else a uvarint of its length plus one and its strings. Times read back in
// UTC: a record keeps instants, not zones.

// recBinary tags a record in a binary form; JSON starts with '{'.
const recBinary byte = 0x01

// errBadRecord is a binary record that ends early, runs on past its last
// field, or holds a flag other than 0 or 1.
var errBadRecord = errors.New("malformed binary record")

// appendDeliveryBin encodes rec in the binary form; ok is false when one of
// its times does not fit it, and the caller writes JSON instead.
func appendDeliveryBin(b []byte, rec *deliveryRec) (_ []byte, ok bool) {
	if !binTime(rec.CreatedAt) || !binTime(rec.DueAt) || !binTime(rec.UpdatedAt) ||
		(rec.Last != nil && !binTime(rec.Last.At)) {
		return b, false
	}
	b = append(b, recBinary)
	b = appendStr(b, rec.ID)
	b = appendStr(b, rec.EventID)
	b = appendStr(b, rec.Destination)
	b = appendStr(b, string(rec.State))
	b = appendStr(b, rec.LastError)
	b = binary.AppendVarint(b, int64(rec.Attempts))
	b = binary.AppendVarint(b, int64(rec.LastStatus))
	b = binary.AppendVarint(b, int64(rec.Logged))
	b = binary.AppendVarint(b, rec.DeadAt)
	b = appendTimeBin(b, rec.CreatedAt)
	b = appendTimeBin(b, rec.DueAt)
	b = appendTimeBin(b, rec.UpdatedAt)
	a := rec.Last
	if a == nil {
		return append(b, 0), true
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, int64(a.N))
	b = appendTimeBin(b, a.At)
	b = binary.AppendVarint(b, int64(a.Duration))
	b = binary.AppendVarint(b, int64(a.Status))
	b = appendStr(b, a.Error)
	return appendStr(b, a.Response), true
}

// The times that have Unix nanoseconds: 1677-09-21 to 2262-04-11.
var (
	minBinTime = time.Unix(0, math.MinInt64)
	maxBinTime = time.Unix(0, math.MaxInt64)
)

// binTime reports whether t has Unix nanoseconds (or is zero), so that
// every time the decoder can produce encodes again.
func binTime(t time.Time) bool {
	return t.IsZero() || (!t.Before(minBinTime) && !t.After(maxBinTime))
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTimeBin(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	return binary.AppendVarint(append(b, 1), t.UnixNano())
}

// decodeDeliveryBin reads a record that appendDeliveryBin wrote.
func decodeDeliveryBin(v []byte, rec *deliveryRec) error {
	r := binReader{record: record{b: v}, i: 1}
	*rec = deliveryRec{}
	rec.ID = r.str()
	rec.EventID = r.str()
	rec.Destination = r.str()
	rec.State = store.DeliveryState(r.str())
	rec.LastError = r.str()
	rec.Attempts = int(r.varint())
	rec.LastStatus = int(r.varint())
	rec.Logged = int(r.varint())
	rec.DeadAt = r.varint()
	rec.CreatedAt = r.time()
	rec.DueAt = r.time()
	rec.UpdatedAt = r.time()
	if r.flag() {
		a := &store.Attempt{}
		a.N = int(r.varint())
		a.At = r.time()
		a.Duration = time.Duration(r.varint())
		a.Status = int(r.varint())
		a.Error = r.str()
		a.Response = r.str()
		rec.Last = a
	}
	return r.end()
}

// appendEventBin encodes rec in the binary form; ok as for
// appendDeliveryBin.
func appendEventBin(b []byte, rec *eventRec) (_ []byte, ok bool) {
	if !binTime(rec.ReceivedAt) {
		return b, false
	}
	b = append(b, recBinary)
	b = appendStr(b, rec.ID)
	b = appendStr(b, rec.WebhookID)
	b = appendStr(b, rec.DedupeKey)
	b = appendStr(b, rec.ContentType)
	b = appendTimeBin(b, rec.ReceivedAt)
	b = appendList(b, rec.Destinations)
	b = appendList(b, rec.DeliveryIDs)
	if rec.Parked {
		return append(b, 1), true
	}
	return append(b, 0), true
}

func appendList(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(ss))+1)
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// decodeEventBin reads a record that appendEventBin wrote.
func decodeEventBin(v []byte, rec *eventRec) error {
	r := binReader{record: record{b: v}, i: 1}
	*rec = eventRec{}
	rec.ID = r.str()
	rec.WebhookID = r.str()
	rec.DedupeKey = r.str()
	rec.ContentType = r.str()
	rec.ReceivedAt = r.time()
	rec.Destinations = r.list()
	rec.DeliveryIDs = r.list()
	rec.Parked = r.flag()
	return r.end()
}

// binReader reads the binary form; a read past the end or a bad value sets
// bad and returns zero values from then on.
type binReader struct {
	record
	i   int
	bad bool
}

func (r *binReader) byte() byte {
	if r.bad || r.i >= len(r.b) {
		r.bad = true
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *binReader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b[r.i:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.i += n
	return v
}

func (r *binReader) str() string {
	if r.bad {
		return ""
	}
	n, w := binary.Uvarint(r.b[r.i:])
	if w <= 0 || n > uint64(len(r.b)-r.i-w) {
		r.bad = true
		return ""
	}
	r.i += w
	if n == 0 {
		return ""
	}
	r.i += int(n)
	return r.text(r.i-int(n), r.i)
}

func (r *binReader) list() []string {
	if r.bad {
		return nil
	}
	n, w := binary.Uvarint(r.b[r.i:])
	// Every string takes at least a byte, which bounds a corrupt count.
	if w <= 0 || n > uint64(len(r.b)-r.i-w)+1 {
		r.bad = true
		return nil
	}
	r.i += w
	if n == 0 {
		return nil
	}
	out := make([]string, n-1)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *binReader) time() time.Time {
	if !r.flag() {
		return time.Time{}
	}
	return time.Unix(0, r.varint()).UTC()
}

// flag reads a byte that must be 0 (false) or 1 (true).
func (r *binReader) flag() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.bad = true
	return false
}

// end is errBadRecord unless every read succeeded and the record is over.
func (r *binReader) end() error {
	if r.bad || r.i != len(r.b) {
		return errBadRecord
	}
	return nil
}
