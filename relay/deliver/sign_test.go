package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Standard Webhooks test vector, from TestWebhookSign in the reference Go
// library (standard-webhooks/standard-webhooks, libraries/go/webhook_test.go).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignerStandardWebhooksVector(t *testing.T) {
	s, err := NewSigner(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign(vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	if got != vectorSignature {
		t.Fatalf("Sign = %q, want %q", got, vectorSignature)
	}
}

func TestSignerSecrets(t *testing.T) {
	ts := time.Unix(vectorTimestamp, 0)
	raw := func(key string) string {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(vectorID + "." + "1614265330" + "." + vectorBody))
		return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	tests := []struct {
		name, secret, want string
	}{
		{"raw key", "plain-secret", raw("plain-secret")},
		{"rotation: two secrets, two signatures", vectorSecret + " plain-secret", vectorSignature + " " + raw("plain-secret")},
		{"extra spaces", "  " + vectorSecret + "   ", vectorSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSigner(tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Sign(vectorID, ts, []byte(vectorBody)); got != tt.want {
				t.Fatalf("Sign = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignerBadSecret(t *testing.T) {
	for _, secret := range []string{"", "   ", "whsec_not*base64!", "whsec_"} {
		_, err := NewSigner(secret)
		if !errors.Is(err, ErrBadSecret) {
			t.Errorf("NewSigner(%q) = %v, want ErrBadSecret", secret, err)
		}
		if err != nil && secret != "" && strings.Contains(err.Error(), strings.TrimSpace(secret)) && strings.TrimSpace(secret) != "" {
			t.Errorf("error %q repeats the secret", err)
		}
	}
}

// Signers reuse their buffers between calls: signatures made at the same
// time, of different lengths, must each be right, and a returned value must
// not change when the buffer is used again.
func TestSignerConcurrent(t *testing.T) {
	const secret = "plain-secret other-secret"
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	want := func(id string, ts time.Time, body []byte) string {
		var sigs []string
		for _, key := range strings.Fields(secret) {
			mac := hmac.New(sha256.New, []byte(key))
			mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "." + string(body)))
			sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		}
		return strings.Join(sigs, " ")
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var kept []string
			for i := range 200 {
				id := "dlv_" + strings.Repeat("x", (g*200+i)%37)
				ts := time.Unix(int64(1_600_000_000+i*977), 0)
				body := []byte(strings.Repeat("b", i))
				got := s.Sign(id, ts, body)
				if w := want(id, ts, body); got != w {
					t.Errorf("Sign(%q, %d, %d bytes) = %q, want %q", id, ts.Unix(), len(body), got, w)
					return
				}
				kept = append(kept, got)
			}
			for i, got := range kept {
				id := "dlv_" + strings.Repeat("x", (g*200+i)%37)
				if w := want(id, time.Unix(int64(1_600_000_000+i*977), 0), []byte(strings.Repeat("b", i))); got != w {
					t.Errorf("signature %d changed after later calls: %q, want %q", i, got, w)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkSign signs a seed-sized body with one key.
func BenchmarkSign(b *testing.B) {
	s, err := NewSigner(vectorSecret)
	if err != nil {
		b.Fatal(err)
	}
	ts := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Sign(vectorID, ts, benchBody)
	}
}
