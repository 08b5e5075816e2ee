package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/relaygw/relay/internal/whsig"
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
const (
	HeaderWebhookID        = whsig.HeaderID
	HeaderWebhookTimestamp = whsig.HeaderTimestamp
	HeaderWebhookSignature = whsig.HeaderSignature
)

// Signer signs webhook bodies the Standard Webhooks way: "v1," followed by
// base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), one signature
// per key, space-separated, so receivers can rotate secrets.
type Signer struct {
	keys [][]byte
	// macs holds idle *signing states: building keyed HMACs costs more
	// than signing a small body, and Reset returns a used one to its keyed
	// state.
	macs sync.Pool
}

// signing is one Sign call's HMACs (one per key) and buffers, reused so
// that a signature allocates nothing but the header value.
type signing struct {
	macs   []hash.Hash
	prefix []byte // id "." timestamp "."
	sum    [sha256.Size]byte
}

// NewSigner parses a signing_secret with whsig.ParseKeys, as config's
// validation does: one or more secrets separated by spaces, "whsec_" ones
// base64. The error never contains the secret.
func NewSigner(secret string) (*Signer, error) {
	keys, err := whsig.ParseKeys(secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSecret, err)
	}
	s := &Signer{keys: keys}
	s.macs.New = func() any {
		st := &signing{macs: make([]hash.Hash, len(s.keys))}
		for i, key := range s.keys {
			st.macs[i] = hmac.New(sha256.New, key)
		}
		return st
	}
	return s, nil
}

// Sign returns the webhook-signature header value for one message.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	return string(s.appendSign(nil, id, ts, body))
}

// appendSign appends Sign's value to out.
func (s *Signer) appendSign(out []byte, id string, ts time.Time, body []byte) []byte {
	st := s.macs.Get().(*signing)
	defer s.macs.Put(st)
	st.prefix = whsig.AppendSignedPrefix(st.prefix[:0], id, ts.Unix())
	for i, mac := range st.macs {
		mac.Reset()
		mac.Write(st.prefix)
		mac.Write(body)
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, mac.Sum(st.sum[:0]))
	}
	return out
}
