package whsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks spec.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix marks a base64-encoded secret.
const SecretPrefix = "whsec_"

// ErrBadSecret matches ParseKeys' errors (errors.Is).
var ErrBadSecret = errors.New("bad secret")

// secretError is a ParseKeys error: its text says what is wrong without
// repeating "bad secret" after the caller's own "signing_secret:".
type secretError string

func (e secretError) Error() string        { return string(e) }
func (e secretError) Is(target error) bool { return target == ErrBadSecret }

// Verification errors. They say which check failed, for logs; a caller
// answering a sender gives no such detail.
var (
	ErrMissingHeader = errors.New("whsig: webhook-id, webhook-timestamp or webhook-signature missing")
	ErrTimestamp     = errors.New("whsig: webhook-timestamp is not a Unix time")
	ErrTooOld        = errors.New("whsig: webhook-timestamp outside the tolerance")
	ErrNoMatch       = errors.New("whsig: no signature matches")
)

// ParseKeys parses one or more secrets separated by spaces (rotation). A
// secret that starts with "whsec_" is the base64 of the key, the form the
// Standard Webhooks libraries generate; any other secret is the key itself.
func ParseKeys(secret string) ([][]byte, error) {
	fields := strings.Fields(secret)
	if len(fields) == 0 {
		return nil, secretError("empty")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		key := []byte(f)
		if rest, ok := strings.CutPrefix(f, SecretPrefix); ok {
			k, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				return nil, secretError(fmt.Sprintf("secret %d: whsec_ value is not base64", i+1))
			}
			key = k
		}
		if len(key) == 0 {
			return nil, secretError(fmt.Sprintf("secret %d is empty", i+1))
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// AppendSignedPrefix appends what precedes the body in the signed content:
// id "." timestamp ".".
func AppendSignedPrefix(out []byte, id string, unix int64) []byte {
	out = append(out, id...)
	out = append(out, '.')
	out = strconv.AppendInt(out, unix, 10)
	return append(out, '.')
}

// Verify checks a message against its three headers: the timestamp must lie
// within tolerance of now in either direction, and one of the space-separated
// "v1," signatures must be the HMAC-SHA256 of the signed content under one of
// keys. Signatures are compared in constant time.
func Verify(keys [][]byte, id, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrMissingHeader
	}
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrTooOld
	}
	prefix := AppendSignedPrefix(nil, id, ts)
	var sum [sha256.Size]byte
	want := make([][]byte, len(keys))
	for i, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write(prefix)
		mac.Write(body)
		want[i] = mac.Sum(sum[:0:0])
	}
	var got [sha256.Size + 2]byte // DecodedLen of a 44-byte value is 33
	ok := false
	for _, sig := range strings.Fields(signature) {
		b64, found := strings.CutPrefix(sig, "v1,")
		if !found || len(b64) != base64.StdEncoding.EncodedLen(sha256.Size) {
			continue // another scheme (v1a, ...) or not a SHA-256 value
		}
		n, err := base64.StdEncoding.Decode(got[:], []byte(b64))
		if err != nil || n != sha256.Size {
			continue
		}
		for _, w := range want {
			// Every pair is compared, so the time taken does not say which matched.
			if hmac.Equal(got[:n], w) {
				ok = true
			}
		}
	}
	if !ok {
		return ErrNoMatch
	}
	return nil
}
