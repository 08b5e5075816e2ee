package redis

import (
	"errors"
	"strconv"
	"strings"
)

// Accept stores an event's fields that never change in one hash field, "e",
// instead of one field each: a Redis hash with a value over 64 bytes (any
// real body) is a table of separately allocated entries, and each entry
// costs the accept script about as much as its bytes do. See doc.go.
//
// The packed value is "1", then id, webhook id, dedupe value,
// content type, received time (Unix ns, "" when the script stamped "ca")
// and destinations JSON, each as its decimal length, ':' and its bytes,
// then the body: every byte left.
const packVersion = '1'

// packedFields are the event fields "e" holds, in order, before the body.
var packedFields = [...]string{"id", "wh", "dk", "ct", "rcv", "dests"}

// packEvent builds the "e" field from the values of packedFields and body.
func packEvent(vals [len(packedFields)]string, body []byte) string {
	n := 1 + len(body)
	for _, v := range vals {
		n += len(v) + 4
	}
	var b strings.Builder // one allocation: String does not copy
	b.Grow(n)
	b.WriteByte(packVersion)
	var num [20]byte
	for _, v := range vals {
		b.Write(strconv.AppendInt(num[:0], int64(len(v)), 10))
		b.WriteByte(':')
		b.WriteString(v)
	}
	b.Write(body)
	return b.String()
}

var errPacked = errors.New("malformed packed event")

// unpackEvent turns an event hash read from Redis into the one-field-per-
// value form the decoders read: the values "e" holds become fields of h
// ("body" included), except that a "dests" field written after accept
// (replay_parked) wins over the packed one, and an empty received time is
// the creation time "ca" (the script's clock).
func unpackEvent(h map[string]string) error {
	e := h["e"]
	if e == "" || e[0] != packVersion {
		return errPacked
	}
	rest := e[1:]
	for _, name := range packedFields {
		colon := strings.IndexByte(rest, ':')
		if colon < 1 {
			return errPacked
		}
		n, err := strconv.Atoi(rest[:colon])
		if err != nil || n < 0 || n > len(rest)-colon-1 {
			return errPacked
		}
		v := rest[colon+1 : colon+1+n]
		rest = rest[colon+1+n:]
		if name == "dests" && h["dests"] != "" {
			continue
		}
		if name == "rcv" && v == "" {
			v = h["ca"]
		}
		h[name] = v
	}
	h["body"] = rest
	delete(h, "e")
	return nil
}
