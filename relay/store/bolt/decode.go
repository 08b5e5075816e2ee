package bolt

import (
	"encoding/json"
	"math"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// Lease decodes a delivery and its event for every delivery it hands out;
// encoding/json spends most of that on reflection. Records are binary since
// format 3 (binary.go); the JSON ones read here were written before. They
// are almost always exactly what the JSON encoders wrote: flat objects whose
// strings need no unescaping. Those are read here directly; anything else
// (an escape, non-ASCII text, whitespace, an unknown key, a value of an
// unexpected type) goes to json.Unmarshal, which stays the only definition
// of the format. decode_test.go checks that both give the same record.

// decodeDelivery reads a delivery record, binary (binary.go) or JSON, into
// rec, which it overwrites whole: a field the record leaves out is zero,
// whatever rec held before.
func decodeDelivery(v []byte, rec *deliveryRec) error {
	if len(v) > 0 && v[0] == recBinary {
		return decodeDeliveryBin(v, rec)
	}
	*rec = deliveryRec{}
	if fastDelivery(v, rec) {
		return nil
	}
	*rec = deliveryRec{}
	return json.Unmarshal(v, rec)
}

// decodeEvent reads an event record, binary (binary.go) or JSON, into rec,
// which it overwrites whole, as decodeDelivery does.
func decodeEvent(v []byte, rec *eventRec) error {
	if len(v) > 0 && v[0] == recBinary {
		return decodeEventBin(v, rec)
	}
	*rec = eventRec{}
	if fastEvent(v, rec) {
		return nil
	}
	*rec = eventRec{}
	return json.Unmarshal(v, rec)
}

func fastDelivery(v []byte, rec *deliveryRec) bool {
	return scanObject(v, func(key []byte, s *scanner) bool {
		var ok bool
		switch string(key) {
		case "id":
			rec.ID, ok = s.str()
		case "event_id":
			rec.EventID, ok = s.str()
		case "destination":
			rec.Destination, ok = s.str()
		case "state":
			rec.State, ok = s.state()
		case "attempts":
			rec.Attempts, ok = s.int()
		case "created_at":
			rec.CreatedAt, ok = s.time()
		case "due_at":
			rec.DueAt, ok = s.time()
		case "last_status":
			rec.LastStatus, ok = s.int()
		case "last_error":
			rec.LastError, ok = s.str()
		case "updated_at":
			rec.UpdatedAt, ok = s.time()
		case "logged":
			rec.Logged, ok = s.int()
		case "dead_at":
			rec.DeadAt, ok = s.int64()
		case "last":
			rec.Last, ok = s.attempt(rec.Last)
		}
		return ok
	})
}

// attempt reads an attempt record into a, or a new one when a is nil; null
// is nil. Both as json.Unmarshal has them, for a key that comes twice too.
func (s *scanner) attempt(a *store.Attempt) (*store.Attempt, bool) {
	if s.lit("null") {
		return nil, true
	}
	if a == nil {
		a = new(store.Attempt)
	}
	ok := s.object(func(key []byte, s *scanner) bool {
		var ok bool
		switch string(key) {
		case "n":
			a.N, ok = s.int()
		case "at":
			a.At, ok = s.time()
		case "duration_ns":
			var d int64
			d, ok = s.int64()
			a.Duration = time.Duration(d)
		case "status":
			a.Status, ok = s.int()
		case "error":
			a.Error, ok = s.str()
		case "response":
			a.Response, ok = s.str()
		}
		return ok
	})
	return a, ok
}

func fastEvent(v []byte, rec *eventRec) bool {
	return scanObject(v, func(key []byte, s *scanner) bool {
		var ok bool
		switch string(key) {
		case "id":
			rec.ID, ok = s.str()
		case "webhook_id":
			rec.WebhookID, ok = s.str()
		case "dedupe_key":
			rec.DedupeKey, ok = s.str()
		case "content_type":
			rec.ContentType, ok = s.str()
		case "received_at":
			rec.ReceivedAt, ok = s.time()
		case "destinations":
			rec.Destinations, ok = s.strs()
		case "parked":
			rec.Parked, ok = s.bool()
		case "delivery_ids":
			rec.DeliveryIDs, ok = s.strs()
		}
		return ok
	})
}

// record is a stored value being decoded. b lives in bbolt's memory map,
// so every string taken from it must be a copy: text copies b once, at the
// first string, and the record's strings are slices of that one copy
// rather than one allocation each. Both decoders, JSON and binary, read
// through it.
type record struct {
	b   []byte
	src string
}

// text returns b[i:j] as a string.
func (r *record) text(i, j int) string {
	if r.src == "" {
		r.src = string(r.b)
	}
	return r.src[i:j]
}

// scanner reads the plain subset of JSON that the encoders write.
type scanner struct {
	record
	i int
}

// scanObject calls field for each key of the object v, with the scanner at
// the key's value; false (from field, or on anything outside the plain
// subset) means v must be decoded by encoding/json. The key is v's own
// bytes, not a copy: field switches on it without allocating.
func scanObject(v []byte, field func(key []byte, s *scanner) bool) bool {
	s := &scanner{record: record{b: v}}
	return s.object(field) && s.i == len(s.b)
}

// object reads an object from the scanner's position, as scanObject
// describes, and leaves the scanner after it.
func (s *scanner) object(field func(key []byte, s *scanner) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		key, ok := s.raw()
		if !ok || !s.eat(':') || !field(key, s) {
			return false
		}
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// raw returns the bytes of a string made of printable ASCII other than the
// quote and the backslash, without its quotes.
func (s *scanner) raw() ([]byte, bool) {
	if !s.eat('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// str reads a string; see record.
func (s *scanner) str() (string, bool) {
	r, ok := s.raw()
	if !ok {
		return "", false
	}
	end := s.i - 1 // the closing quote
	return s.text(end-len(r), end), true
}

var knownStates = []store.DeliveryState{store.StatePending, store.StateDelivered, store.StateDead, store.StateDiscarded}

// state reads a delivery state; the known ones are not copied.
func (s *scanner) state() (store.DeliveryState, bool) {
	r, ok := s.raw()
	if !ok {
		return "", false
	}
	for _, st := range knownStates {
		if string(r) == string(st) {
			return st, true
		}
	}
	return store.DeliveryState(r), true
}

// int reads a decimal integer that fits an int.
func (s *scanner) int() (int, bool) {
	n, ok := s.int64()
	return int(n), ok && int64(int(n)) == n
}

// int64 reads a decimal integer of at most 19 digits that fits an int64;
// anything else is left to encoding/json.
func (s *scanner) int64() (int64, bool) {
	neg := s.eat('-')
	start := s.i
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + uint64(s.b[s.i]-'0') // 19 digits fit a uint64
		s.i++
		if s.i-start > 19 {
			return 0, false
		}
	}
	digits := s.i - start
	// JSON allows no leading zeros.
	if digits == 0 || (digits > 1 && s.b[start] == '0') || n > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

func (s *scanner) time() (time.Time, bool) {
	r, ok := s.raw()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	// UnmarshalText is RFC 3339 as UnmarshalJSON reads it, without quotes.
	if err := t.UnmarshalText(r); err != nil {
		return time.Time{}, false
	}
	return t, true
}

func (s *scanner) bool() (bool, bool) {
	switch {
	case s.lit("true"):
		return true, true
	case s.lit("false"):
		return false, true
	}
	return false, false
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// strs reads an array of strings; null is nil and [] is empty, not nil, as
// json.Unmarshal has them.
func (s *scanner) strs() ([]string, bool) {
	if s.lit("null") {
		return nil, true
	}
	if !s.eat('[') {
		return nil, false
	}
	out := []string{}
	if s.eat(']') {
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.eat(']') {
			return out, true
		}
		if !s.eat(',') {
			return nil, false
		}
	}
}
