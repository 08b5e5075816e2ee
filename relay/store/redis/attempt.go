package redis

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// An attempt is stored as text the scripts never read inside: the
// delivery hash's "la" and the entries of its att list. A Redis hash whose
// values are all at most hash-max-listpack-value (64 bytes by default) is
// one compact listpack; one longer value makes it a table of separately
// allocated entries, about three times the memory and more CPU per write.
// A successful attempt as JSON takes about 80 bytes, so attempts are
// encoded as
//
//	"A" N " " At " " Duration " " Status " " len(Error) ":" Error Response
//
// with the numbers in decimal, At in Unix nanoseconds and Duration in
// nanoseconds: about 37 bytes for an attempt with no error and no
// response body.
const attemptVersion = 'A'

var errAttempt = errors.New("malformed attempt")

// encodeAttempt encodes a in the stored attempt format.
func encodeAttempt(a store.Attempt) string {
	var at int64
	if !a.At.IsZero() {
		at = a.At.UnixNano()
	}
	b := make([]byte, 0, 48+len(a.Error)+len(a.Response))
	b = append(b, attemptVersion)
	b = strconv.AppendInt(b, int64(a.N), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, at, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(a.Duration), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(a.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(a.Error)), 10)
	b = append(b, ':')
	b = append(b, a.Error...)
	b = append(b, a.Response...)
	return string(b)
}

// decodeAttempt decodes an attempt stored by encodeAttempt. At is in the
// local time zone, as every time this backend returns.
func decodeAttempt(v string) (store.Attempt, error) {
	var a store.Attempt
	rest, ok := strings.CutPrefix(v, string(attemptVersion))
	if !ok {
		return a, errAttempt
	}
	var nums [4]int64
	for i := range nums {
		field, after, ok := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(field, 10, 64)
		if !ok || err != nil {
			return a, errAttempt
		}
		nums[i], rest = n, after
	}
	field, rest, ok := strings.Cut(rest, ":")
	elen, err := strconv.Atoi(field)
	if !ok || err != nil || elen < 0 || elen > len(rest) {
		return a, errAttempt
	}
	a.N = int(nums[0])
	if nums[1] != 0 {
		a.At = time.Unix(0, nums[1])
	}
	a.Duration = time.Duration(nums[2])
	a.Status = int(nums[3])
	a.Error, a.Response = rest[:elen], rest[elen:]
	return a, nil
}
