package whsig

import (
	"errors"
	"testing"
	"time"
)

// The published test vector of the Standard Webhooks spec repository.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = "1614265330"
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestVerifyPublishedVector(t *testing.T) {
	keys, err := ParseKeys(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1614265330, 0)
	other, err := ParseKeys("whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		keys      [][]byte
		id, ts    string
		sig, body string
		now       time.Time
		want      error
	}{
		{"vector", keys, vecID, vecTS, vecSig, vecBody, at, nil},
		{"vector among others", keys, vecID, vecTS, "v1a,xyz v1,AAAA " + vecSig, vecBody, at, nil},
		{"rotated key", append(other, keys...), vecID, vecTS, vecSig, vecBody, at, nil},
		{"within tolerance ahead", keys, vecID, vecTS, vecSig, vecBody, at.Add(-5 * time.Minute), nil},
		{"within tolerance behind", keys, vecID, vecTS, vecSig, vecBody, at.Add(5 * time.Minute), nil},
		{"expired", keys, vecID, vecTS, vecSig, vecBody, at.Add(5*time.Minute + time.Second), ErrTooOld},
		{"from the future", keys, vecID, vecTS, vecSig, vecBody, at.Add(-5*time.Minute - time.Second), ErrTooOld},
		{"body changed", keys, vecID, vecTS, vecSig, `{"test": 2432232315}`, at, ErrNoMatch},
		{"id changed", keys, "msg_other", vecTS, vecSig, vecBody, at, ErrNoMatch},
		{"wrong key", other, vecID, vecTS, vecSig, vecBody, at, ErrNoMatch},
		{"no v1 prefix", keys, vecID, vecTS, vecSig[3:], vecBody, at, ErrNoMatch},
		{"bad timestamp", keys, vecID, "soon", vecSig, vecBody, at, ErrTimestamp},
		{"missing id", keys, "", vecTS, vecSig, vecBody, at, ErrMissingHeader},
		{"missing signature", keys, vecID, vecTS, "", vecBody, at, ErrMissingHeader},
		{"long base64", keys, vecID, vecTS, "v1," + vecSig[3:] + "AAAA", vecBody, at, ErrNoMatch},
	}
	for _, tc := range tests {
		err := Verify(tc.keys, tc.id, tc.ts, tc.sig, []byte(tc.body), tc.now, 5*time.Minute)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		secret string
		n      int
		bad    bool
	}{
		{vecSecret, 1, false},
		{"plain-key " + vecSecret, 2, false},
		{"whsec_not*base64", 0, true},
		{"whsec_", 0, true},
		{"   ", 0, true},
	}
	for _, tc := range tests {
		keys, err := ParseKeys(tc.secret)
		if (err != nil) != tc.bad || len(keys) != tc.n {
			t.Errorf("ParseKeys(%q) = %d keys, %v", tc.secret, len(keys), err)
		}
		if err != nil && !errors.Is(err, ErrBadSecret) {
			t.Errorf("ParseKeys(%q) error %v does not wrap ErrBadSecret", tc.secret, err)
		}
	}
}
