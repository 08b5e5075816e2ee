package store

import "github.com/oklog/ulid/v2"

// NewID returns a unique, time-ordered id with the given prefix, such as
// "evt_01JD3Y...". Ordering by id is ordering by creation time (to the
// millisecond), which lets backends page lists by id.
func NewID(prefix string) string {
	return prefix + ulid.Make().String()
}
