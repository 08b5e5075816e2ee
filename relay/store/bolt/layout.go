package bolt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/relaygw/relay/relay/store"
)

// formatVersion names the layout and record form (codec.go) this relay
// writes; it is stored in the meta bucket, and Open refuses a file that
// holds data under any other (format.go). Change it with the layout.
const formatVersion = "5"

// Top-level bucket names.
var (
	bucketMeta       = []byte("meta")
	bucketEvents     = []byte("events")
	bucketDeliveries = []byte("deliveries")
	bucketAttempts   = []byte("attempts")
	bucketQueue      = []byte("queue")
	bucketDLQ        = []byte("dlq")
	bucketDLQDest    = []byte("dlqdest")
	bucketParked     = []byte("parked")
	bucketDedupe     = []byte("dedupe")
	bucketDedupeExp  = []byte("dedupexp")
	bucketCounts     = []byte("counts")

	allBuckets = [][]byte{
		bucketMeta, bucketEvents, bucketDeliveries, bucketAttempts, bucketQueue,
		bucketDLQ, bucketDLQDest, bucketParked, bucketDedupe, bucketDedupeExp, bucketCounts,
	}
)

// appendFill is the fill percent of the buckets whose new keys sort last
// (ids and times): pages then split when nearly full, where bbolt's default
// of half suits random inserts. Half-empty pages would make every commit
// write about a third more pages and the file grow half again as fast. It is
// not 1.0 because delivery records grow a little when updated in place.
const appendFill = 0.9

// fillForAppends sets appendFill on this transaction's handles of the
// append-ordered top-level buckets. Event records are written once (a
// parked event's replay aside), so their pages are filled whole: at a few
// hundred bytes each, a tenth of a page left free is most of a record.
func fillForAppends(tx *bbolt.Tx) {
	for _, name := range [][]byte{bucketDeliveries, bucketDedupeExp, bucketParked, bucketDLQ} {
		tx.Bucket(name).FillPercent = appendFill
	}
	tx.Bucket(bucketEvents).FillPercent = 1
}

// eventRec is an event as stored, in one value with its body (codec.go):
// a lease reads both, and one key and element header per event fewer is
// what a queued callback costs less on disk.
type eventRec struct {
	store.Event
	DeliveryIDs []string
}

// deliveryRec is a delivery as stored.
type deliveryRec struct {
	store.Delivery
	// Logged counts attempt records; unlike Attempts it survives a DLQ replay,
	// so the log keeps every attempt ever made.
	Logged int
	// DeadAt is the time in the delivery's DLQ keys while it is dead.
	DeadAt int64
	// Last is the newest attempt, number Logged of the log, kept in the
	// record rather than in the attempts bucket: most deliveries take one
	// attempt, and their outcome then writes one record instead of two.
	// The next attempt moves it to the bucket.
	Last *store.Attempt
}

// timeKey is a key that sorts by time, then by id.
func timeKey(nanos int64, id string) []byte {
	return appendTimeKey(make([]byte, 0, 8+len(id)), nanos, id)
}

// appendTimeKey appends timeKey's key to k; a key only looked up can then
// live on the caller's stack.
func appendTimeKey(k []byte, nanos int64, id string) []byte {
	k = binary.BigEndian.AppendUint64(k, uint64(max(nanos, 0)))
	return append(k, id...)
}

func dueKey(d *store.Delivery) []byte { return timeKey(d.DueAt.UnixNano(), d.ID) }

// appendDueKey appends dueKey's key to k, as appendTimeKey does.
func appendDueKey(k []byte, d *store.Delivery) []byte {
	return appendTimeKey(k, d.DueAt.UnixNano(), d.ID)
}

// splitTimeKey returns the time and id of a timeKey.
func splitTimeKey(k []byte) (int64, string) {
	if len(k) < 8 {
		return 0, ""
	}
	return int64(binary.BigEndian.Uint64(k)), string(k[8:])
}

func attemptKey(deliveryID string, seq int) []byte {
	k := make([]byte, len(deliveryID)+1+4)
	copy(k, deliveryID)
	binary.BigEndian.PutUint32(k[len(deliveryID)+1:], uint32(seq))
	return k
}

func attemptPrefix(deliveryID string) []byte {
	return append([]byte(deliveryID), 0)
}

func queuedKey(dest string) []byte { return append([]byte("q\x00"), dest...) }
func deadKey(dest string) []byte   { return append([]byte("d\x00"), dest...) }

var parkedCountKey = []byte("p")

// dedupeValue encodes a claim: its expiry (0 for never) and the holder.
func dedupeValue(expiry int64, eventID string) []byte { return timeKey(expiry, eventID) }

// getEvent loads an event with its body.
func getEvent(tx *bbolt.Tx, id string) (*eventRec, error) {
	return readerOf(tx).event(id)
}

// getEventMeta loads an event without its body.
func getEventMeta(tx *bbolt.Tx, id string) (*eventRec, error) {
	return readerOf(tx).eventMeta(id)
}

// reader looks records up in one transaction. In a read-only transaction
// bbolt finds a bucket by searching its parent on every tx.Bucket call, and
// every Bucket.Get makes a new cursor whose search path grows by allocation
// (three or so per lookup), so a reader that serves many lookups (a Lease)
// finds each bucket once and keeps one cursor per bucket.
type reader struct {
	tx                 *bbolt.Tx
	events, deliveries lookup
}

// lookup is a top-level bucket's cursor, made at its first use, and in a
// read-only transaction the key it was last left at.
type lookup struct {
	c    *bbolt.Cursor
	last []byte
}

func readerOf(tx *bbolt.Tx) *reader { return &reader{tx: tx} }

// nearSteps is how far get walks forward from the last key before it seeks.
// A Lease reads deliveries in due order, which is the order their ids and
// their events' ids were made in (store.NewID), so the next record is
// mostly the next key or a few keys on: one step costs a comparison where
// a seek searches every level of the tree again.
const nearSteps = 4

// get is Bucket.Get through l's cursor. In a writable transaction every call
// seeks from the root, so writes made in the transaction since the last
// call are seen (bbolt's cursors do not follow writes). In a read-only one
// it first steps forward from the last key found.
func (r *reader) get(l *lookup, name, key []byte) []byte {
	if l.c == nil {
		l.c = r.tx.Bucket(name).Cursor()
	}
	var k, v []byte
	if l.last != nil && bytes.Compare(l.last, key) < 0 {
		for range nearSteps {
			if k, v = l.c.Next(); k == nil || bytes.Compare(k, key) >= 0 {
				break
			}
		}
	}
	if k == nil || bytes.Compare(k, key) < 0 {
		k, v = l.c.Seek(key)
	}
	if !r.tx.Writable() {
		l.last = k
	}
	if !bytes.Equal(k, key) {
		return nil
	}
	return v // nil for a nested bucket, as Get has it
}

func (r *reader) event(id string) (*eventRec, error) { return r.readEvent(id, true) }

func (r *reader) eventMeta(id string) (*eventRec, error) { return r.readEvent(id, false) }

func (r *reader) readEvent(id string, withBody bool) (*eventRec, error) {
	v := r.get(&r.events, bucketEvents, []byte(id))
	if v == nil {
		return nil, fmt.Errorf("event %s: %w", id, store.ErrNotFound)
	}
	rec := new(eventRec)
	if err := decodeEvent(id, v, rec, withBody); err != nil {
		return nil, fmt.Errorf("decode event %s: %w", id, err)
	}
	return rec, nil
}

func putEvent(tx *bbolt.Tx, rec *eventRec) error {
	return tx.Bucket(bucketEvents).Put([]byte(rec.ID), encodeEvent(rec))
}

func getDelivery(tx *bbolt.Tx, id string) (*deliveryRec, error) {
	return readerOf(tx).delivery(id)
}

func (r *reader) delivery(id string) (*deliveryRec, error) {
	rec := new(deliveryRec)
	if err := r.deliveryInto(id, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// deliveryInto is delivery decoding into rec.
func (r *reader) deliveryInto(id string, rec *deliveryRec) error {
	v := r.get(&r.deliveries, bucketDeliveries, []byte(id))
	if v == nil {
		return fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
	}
	if err := decodeDelivery(id, v, rec); err != nil {
		return fmt.Errorf("decode delivery %s: %w", id, err)
	}
	return nil
}

func putDelivery(tx *bbolt.Tx, rec *deliveryRec) error {
	return tx.Bucket(bucketDeliveries).Put([]byte(rec.ID), encodeDelivery(rec))
}

// logAttempt logs a and counts it on rec; the caller stores rec. a
// becomes rec.Last, and the attempt that was Last moves to the attempts
// bucket.
func logAttempt(tx *bbolt.Tx, rec *deliveryRec, a store.Attempt) error {
	if a.N == 0 {
		a.N = rec.Attempts + 1
	}
	if prev := rec.Last; prev != nil {
		if err := tx.Bucket(bucketAttempts).Put(attemptKey(rec.ID, rec.Logged), encodeAttempt(prev)); err != nil {
			return err
		}
	}
	rec.Logged++
	rec.Attempts++
	rec.LastStatus = a.Status
	rec.LastError = a.Error
	rec.Last = &a
	return nil
}

// attemptLog returns rec's attempts, oldest first: those in the attempts
// bucket, then rec.Last.
func attemptLog(tx *bbolt.Tx, rec *deliveryRec) ([]store.Attempt, error) {
	log := []store.Attempt{}
	prefix := attemptPrefix(rec.ID)
	c := tx.Bucket(bucketAttempts).Cursor()
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		var a store.Attempt
		if err := decodeAttempt(v, &a); err != nil {
			return nil, fmt.Errorf("decode attempt %x: %w", k, err)
		}
		log = append(log, a)
	}
	if rec.Last != nil {
		log = append(log, *rec.Last)
	}
	return log, nil
}

// queueBucket returns dest's due index, creating it in a write transaction.
func queueBucket(tx *bbolt.Tx, dest string) (*bbolt.Bucket, error) {
	b, err := nested(tx, bucketQueue, dest)
	if b != nil {
		b.FillPercent = appendFill // keyed by due time, mostly now
	}
	return b, err
}

func dlqDestBucket(tx *bbolt.Tx, dest string) (*bbolt.Bucket, error) {
	return nested(tx, bucketDLQDest, dest)
}

// nested returns the bucket name inside parent; in a read-only transaction a
// missing bucket is nil, nil.
func nested(tx *bbolt.Tx, parent []byte, name string) (*bbolt.Bucket, error) {
	p := tx.Bucket(parent)
	if !tx.Writable() {
		return p.Bucket([]byte(name)), nil
	}
	b, err := p.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("bucket %s/%q: %w", parent, name, err)
	}
	return b, nil
}

// addCount adds delta to the counter at key.
func addCount(tx *bbolt.Tx, key []byte, delta int64) error {
	b := tx.Bucket(bucketCounts)
	n := delta
	if v := b.Get(key); len(v) == 8 {
		n += int64(binary.BigEndian.Uint64(v))
	}
	if n <= 0 {
		return b.Delete(key)
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return b.Put(key, v)
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

// clone copies bytes out of bbolt's memory map, which is only valid inside the
// transaction.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
