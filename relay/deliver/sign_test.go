package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
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
