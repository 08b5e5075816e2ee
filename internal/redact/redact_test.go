package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"https://crm.example/calls", "https://crm.example/calls"},
		{"https://crm.example/calls?token=s3cret", "https://crm.example/calls?token=xxxxx"},
		{"https://crm.example/calls?a=1&b=2&flag", "https://crm.example/calls?a=xxxxx&b=xxxxx&flag"},
		{"redis://:Pa55@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"redis://user:Pa55@127.0.0.1:6379/0?password=x", "redis://xxxxx:xxxxx@127.0.0.1:6379/0?password=xxxxx"},
		{"https://sk_live_key@api.example/", "https://xxxxx@api.example/"},
		{"https://crm.example/#frag-secret", "https://crm.example/"},
		{"http://[::1", "(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := String(tt.raw); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestError: url.Parse quotes what it cannot read, which for a URL whose
// password has a ':' is the password; Error shows neither it nor the URL.
func TestError(t *testing.T) {
	tests := []struct {
		raw     string
		want    string
		secrets []string
	}{
		// A password without the '@' that ends it reads as a port.
		{"redis://default:Pa55", `invalid port "xxxxx" after host`, []string{"Pa55"}},
		{"redis://default:Pa55/0", `invalid port "xxxxx" after host`, []string{"Pa55"}},
		{"http://[::1", "missing ']' in host", nil},
		{"https://crm.example/%zz?token=s3cret", `invalid URL escape "xxxxx"`, []string{"s3cret"}},
	}
	for _, tt := range tests {
		_, err := url.Parse(tt.raw)
		if err == nil {
			t.Fatalf("url.Parse(%q) succeeded", tt.raw)
		}
		got := Error(fmt.Errorf("wrapped: %w", err), tt.raw)
		if got != tt.want {
			t.Errorf("Error(%q) = %q, want %q", tt.raw, got, tt.want)
		}
		for _, s := range append(tt.secrets, tt.raw) {
			if strings.Contains(got, s) {
				t.Errorf("Error(%q) = %q shows %q", tt.raw, got, s)
			}
		}
	}
	raw := "https://crm.example/?token=s3cret"
	if got := Error(errors.New("cannot reach "+raw), raw); got != "cannot reach https://crm.example/?token=xxxxx" {
		t.Errorf("Error of a plain error = %q", got)
	}
}
