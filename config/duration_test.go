package config

import (
	"encoding/json"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"250ms", 250 * time.Millisecond, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"0", 0, ""},
		{"-5s", -5 * time.Second, ""},
		{"10", 0, `invalid duration "10": want a Go duration such as "250ms", "10s" or "24h"`},
		{"[1s]", 0, "expected a duration, got a list"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var v struct{ D Duration }
			err := yaml.Unmarshal([]byte("d: "+tt.in), &v)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || v.D.D() != tt.want {
				t.Fatalf("got %v, %v, want %v", v.D, err, tt.want)
			}
		})
	}
}

func TestDurationMarshal(t *testing.T) {
	d := Duration(90 * time.Second)
	y, err := yaml.Marshal(map[string]Duration{"d": d})
	if err != nil || string(y) != "d: 1m30s\n" {
		t.Errorf("yaml = %q, %v", y, err)
	}
	j, err := json.Marshal(map[string]Duration{"d": d})
	if err != nil || string(j) != `{"d":"1m30s"}` {
		t.Errorf("json = %s, %v", j, err)
	}
	var back map[string]Duration
	if err := json.Unmarshal(j, &back); err != nil || back["d"] != d {
		t.Errorf("json round trip = %v, %v", back, err)
	}
}
