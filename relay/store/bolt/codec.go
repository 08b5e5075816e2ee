package bolt

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Records are stored in one compact binary form: a delivery record is
// rewritten by every outcome and read by every lease, and an event record
// is read by every lease too, so their size and decoding cost are most of
// what the store spends per delivery.
//
//	delivery  strings id, event_id, destination, state, last_error;
//	          varints attempts, last_status, logged, dead_at;
//	          times created_at, due_at, updated_at;
//	          last: 0, or 1 and an attempt
//	attempt   varint n, time at, varint duration_ns, varint status,
//	          strings error and response (also a value of the attempts bucket)
//	event     strings id, webhook_id, dedupe_key, content_type;
//	          time received_at; lists destinations, delivery_ids;
//	          parked: 0 or 1
//
// A string is a uvarint length and its bytes; a time is the varint of its
// Unix seconds and the uvarint of its nanoseconds (below 1e9), which holds
// every time.Time, the zero time included; a list is 0 for nil, else a
// uvarint of its length plus one and its strings. Times read back in UTC:
// a record keeps instants, not zones.

// errBadRecord is a record that ends early, runs on past its last field,
// or holds a value no encoder writes.
var errBadRecord = errors.New("malformed record")

// encodeDelivery encodes rec. bbolt keeps a value until the commit, so
// every record gets its own buffer.
func encodeDelivery(rec *deliveryRec) []byte {
	b := make([]byte, 0, 96+len(rec.ID)+len(rec.EventID)+len(rec.Destination)+len(rec.LastError)+attemptLen(rec.Last))
	b = appendStr(b, rec.ID)
	b = appendStr(b, rec.EventID)
	b = appendStr(b, rec.Destination)
	b = appendStr(b, string(rec.State))
	b = appendStr(b, rec.LastError)
	b = binary.AppendVarint(b, int64(rec.Attempts))
	b = binary.AppendVarint(b, int64(rec.LastStatus))
	b = binary.AppendVarint(b, int64(rec.Logged))
	b = binary.AppendVarint(b, rec.DeadAt)
	b = appendTime(b, rec.CreatedAt)
	b = appendTime(b, rec.DueAt)
	b = appendTime(b, rec.UpdatedAt)
	if rec.Last == nil {
		return append(b, 0)
	}
	return appendAttempt(append(b, 1), rec.Last)
}

// attemptLen is about the encoded size of a, for a buffer's capacity.
func attemptLen(a *store.Attempt) int {
	if a == nil {
		return 0
	}
	return 48 + len(a.Error) + len(a.Response)
}

func appendAttempt(b []byte, a *store.Attempt) []byte {
	b = binary.AppendVarint(b, int64(a.N))
	b = appendTime(b, a.At)
	b = binary.AppendVarint(b, int64(a.Duration))
	b = binary.AppendVarint(b, int64(a.Status))
	b = appendStr(b, a.Error)
	return appendStr(b, a.Response)
}

// encodeAttempt encodes a value of the attempts bucket.
func encodeAttempt(a *store.Attempt) []byte {
	return appendAttempt(make([]byte, 0, attemptLen(a)), a)
}

// encodeEvent encodes rec (without its body, which has its own bucket).
func encodeEvent(rec *eventRec) []byte {
	n := 64 + len(rec.ID) + len(rec.WebhookID) + len(rec.DedupeKey) + len(rec.ContentType)
	for _, s := range rec.Destinations {
		n += 1 + len(s)
	}
	for _, s := range rec.DeliveryIDs {
		n += 1 + len(s)
	}
	b := make([]byte, 0, n)
	b = appendStr(b, rec.ID)
	b = appendStr(b, rec.WebhookID)
	b = appendStr(b, rec.DedupeKey)
	b = appendStr(b, rec.ContentType)
	b = appendTime(b, rec.ReceivedAt)
	b = appendList(b, rec.Destinations)
	b = appendList(b, rec.DeliveryIDs)
	if rec.Parked {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
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

// decodeDelivery reads a delivery record into rec, which it overwrites
// whole.
func decodeDelivery(v []byte, rec *deliveryRec) error {
	r := recReader{b: v}
	*rec = deliveryRec{}
	rec.ID = r.str()
	rec.EventID = r.str()
	rec.Destination = r.str()
	rec.State = store.DeliveryState(r.str())
	rec.LastError = r.str()
	rec.Attempts = r.int()
	rec.LastStatus = r.int()
	rec.Logged = r.int()
	rec.DeadAt = r.varint()
	rec.CreatedAt = r.time()
	rec.DueAt = r.time()
	rec.UpdatedAt = r.time()
	if r.flag() {
		rec.Last = new(store.Attempt)
		r.attempt(rec.Last)
	}
	return r.end()
}

// decodeAttempt reads a value of the attempts bucket.
func decodeAttempt(v []byte, a *store.Attempt) error {
	r := recReader{b: v}
	r.attempt(a)
	return r.end()
}

// decodeEvent reads an event record into rec, which it overwrites whole.
func decodeEvent(v []byte, rec *eventRec) error {
	r := recReader{b: v}
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

// recReader reads a record; a read past the end or a bad value sets bad
// and returns zero values from then on. b lives in bbolt's memory map, so
// every string taken from it must be a copy: the first string copies b
// whole, and the record's strings are slices of that one copy rather than
// an allocation each.
type recReader struct {
	b   []byte
	src string
	i   int
	bad bool
}

func (r *recReader) attempt(a *store.Attempt) {
	a.N = r.int()
	a.At = r.time()
	a.Duration = time.Duration(r.varint())
	a.Status = r.int()
	a.Error = r.str()
	a.Response = r.str()
}

func (r *recReader) varint() int64 {
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

// int reads a varint that must fit an int, so that it encodes back the
// same.
func (r *recReader) int() int {
	v := r.varint()
	if int64(int(v)) != v {
		r.bad = true
		return 0
	}
	return int(v)
}

func (r *recReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.i += n
	return v
}

func (r *recReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)-r.i) {
		r.bad = true
		return ""
	}
	if n == 0 {
		return ""
	}
	if r.src == "" {
		r.src = string(r.b)
	}
	r.i += int(n)
	return r.src[r.i-int(n) : r.i]
}

func (r *recReader) list() []string {
	n := r.uvarint()
	// Every string takes at least a byte, which bounds a corrupt count.
	if r.bad || n > uint64(len(r.b)-r.i)+1 {
		r.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	out := make([]string, n-1)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *recReader) time() time.Time {
	sec, nsec := r.varint(), r.uvarint()
	if r.bad || nsec >= 1e9 {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// flag reads a byte that must be 0 (false) or 1 (true).
func (r *recReader) flag() bool {
	if r.bad || r.i >= len(r.b) || r.b[r.i] > 1 {
		r.bad = true
		return false
	}
	r.i++
	return r.b[r.i-1] == 1
}

// end is errBadRecord unless every read succeeded and the record is over.
func (r *recReader) end() error {
	if r.bad || r.i != len(r.b) {
		return errBadRecord
	}
	return nil
}
