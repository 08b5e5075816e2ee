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
// what the store spends per delivery. A record's id is its key, not part of
// its value.
//
//	delivery  strings event_id, destination, state, last_error;
//	          varints attempts, last_status, logged, dead_at;
//	          time created_at; times due_at, updated_at after created_at;
//	          last: 0, or 1 and an attempt
//	attempt   varint n, time at, varint duration_ns, varint status,
//	          strings error and response (also a value of the attempts bucket)
//	event     uvarint length of what follows up to the body;
//	          strings webhook_id, dedupe_key, content_type;
//	          time received_at; lists destinations, delivery_ids;
//	          parked: 0 or 1; then the body, exactly as received
//
// A string is a uvarint length and its bytes; a time is the varint of its
// Unix seconds and the uvarint of its nanoseconds (below 1e9), which holds
// every time.Time, the zero time included; a time after another is the
// varints of the differences of its seconds and nanoseconds, two bytes for
// the same time; a list is 0 for nil, else a uvarint of its length plus one
// and its strings. Times read back in UTC: a record keeps instants, not
// zones.

// errBadRecord is a record that ends early, runs on past its last field,
// or holds a value no encoder writes.
var errBadRecord = errors.New("malformed record")

// encodeDelivery encodes rec. bbolt keeps a value until the commit, so
// every record gets its own buffer.
func encodeDelivery(rec *deliveryRec) []byte {
	b := make([]byte, 0, 64+len(rec.EventID)+len(rec.Destination)+len(rec.LastError)+attemptLen(rec.Last))
	b = appendStr(b, rec.EventID)
	b = appendStr(b, rec.Destination)
	b = appendStr(b, string(rec.State))
	b = appendStr(b, rec.LastError)
	b = binary.AppendVarint(b, int64(rec.Attempts))
	b = binary.AppendVarint(b, int64(rec.LastStatus))
	b = binary.AppendVarint(b, int64(rec.Logged))
	b = binary.AppendVarint(b, rec.DeadAt)
	b = appendTime(b, rec.CreatedAt)
	b = appendTimeAfter(b, rec.DueAt, rec.CreatedAt)
	b = appendTimeAfter(b, rec.UpdatedAt, rec.CreatedAt)
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

// encodeEvent encodes rec with its body.
func encodeEvent(rec *eventRec) []byte {
	n := 48 + len(rec.WebhookID) + len(rec.DedupeKey) + len(rec.ContentType)
	for _, s := range rec.Destinations {
		n += 1 + len(s)
	}
	for _, s := range rec.DeliveryIDs {
		n += 1 + len(s)
	}
	// The fields go after room for their length, which is then written
	// just before them: one buffer, one copy of the body.
	b := make([]byte, binary.MaxVarintLen64, binary.MaxVarintLen64+n+len(rec.Body))
	b = appendStr(b, rec.WebhookID)
	b = appendStr(b, rec.DedupeKey)
	b = appendStr(b, rec.ContentType)
	b = appendTime(b, rec.ReceivedAt)
	b = appendList(b, rec.Destinations)
	b = appendList(b, rec.DeliveryIDs)
	if rec.Parked {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	fields := len(b) - binary.MaxVarintLen64
	var l [binary.MaxVarintLen64]byte
	w := binary.PutUvarint(l[:], uint64(fields))
	start := binary.MaxVarintLen64 - w
	copy(b[start:], l[:w])
	return append(b[start:], rec.Body...)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// appendTimeAfter appends t as its difference from base.
func appendTimeAfter(b []byte, t, base time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix()-base.Unix())
	return binary.AppendVarint(b, int64(t.Nanosecond()-base.Nanosecond()))
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

// decodeDelivery reads the record of delivery id into rec, which it
// overwrites whole.
func decodeDelivery(id string, v []byte, rec *deliveryRec) error {
	r := recReader{b: v}
	*rec = deliveryRec{}
	rec.ID = id
	rec.EventID = r.str()
	rec.Destination = r.str()
	rec.State = store.DeliveryState(r.str())
	rec.LastError = r.str()
	rec.Attempts = r.int()
	rec.LastStatus = r.int()
	rec.Logged = r.int()
	rec.DeadAt = r.varint()
	rec.CreatedAt = r.time()
	rec.DueAt = r.timeAfter(rec.CreatedAt)
	rec.UpdatedAt = r.timeAfter(rec.CreatedAt)
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

// decodeEvent reads the record of event id into rec, which it overwrites
// whole, with a copy of the body when withBody.
func decodeEvent(id string, v []byte, rec *eventRec, withBody bool) error {
	*rec = eventRec{}
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) {
		return errBadRecord
	}
	end := w + int(n)
	r := recReader{b: v[w:end]}
	rec.ID = id
	rec.WebhookID = r.str()
	rec.DedupeKey = r.str()
	rec.ContentType = r.str()
	rec.ReceivedAt = r.time()
	rec.Destinations = r.list()
	rec.DeliveryIDs = r.list()
	rec.Parked = r.flag()
	if withBody {
		rec.Body = clone(v[end:])
	}
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

// timeAfter reads a time that appendTimeAfter wrote.
func (r *recReader) timeAfter(base time.Time) time.Time {
	dsec, dnsec := r.varint(), r.varint()
	nsec := int64(base.Nanosecond()) + dnsec
	if r.bad || nsec < 0 || nsec >= 1e9 {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(base.Unix()+dsec, nsec).UTC()
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
