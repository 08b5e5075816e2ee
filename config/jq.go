package config

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/itchyny/gojq"
)

// checkJQ parses and compiles a jq expression the way relay/transform does,
// so that a file check passes exactly when the relay can run it. It returns
// gojq's message, with the column of a syntax error.
func checkJQ(src string) error {
	if strings.TrimSpace(src) == "" {
		return errors.New("jq: empty expression")
	}
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			off := min(max(pe.Offset, 0), len(src))
			return fmt.Errorf("jq: %s at column %d", pe.Error(), max(len([]rune(src[:off])), 1))
		}
		return fmt.Errorf("jq: %w", err)
	}
	if _, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil })); err != nil {
		return fmt.Errorf("jq: %w", err)
	}
	return nil
}

// relayHeaders are set by Relay on every delivery; a transform cannot
// replace them, so naming one is refused rather than ignored.
var relayHeaders = []string{"Idempotency-Key", "X-Relay-Event-Id", "X-Relay-Webhook-Id", "X-Relay-Attempt",
	"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature", "Content-Length", "Host"}

// transform checks a destination's transform: the format, and that every
// expression compiles.
func (dv destValidator) transform() {
	t := dv.d.Transform
	if t == nil {
		return
	}
	if t.Format != "" && t.Format != FormatJSON && t.Format != FormatForm {
		dv.add(dv.at("transform.format"), "%s: transform.format must be %q or %q, got %q", dv.label, FormatJSON, FormatForm, t.Format)
	}
	if t.Body != "" {
		if err := checkJQ(t.Body); err != nil {
			dv.add(dv.at("transform.body"), "%s: transform.body: %v", dv.label, err)
		}
	}
	if strings.ContainsAny(t.ContentType, "\r\n\x00") {
		dv.add(dv.at("transform.content_type"), "%s: transform.content_type contains a line break or NUL", dv.label)
	}
	for name, expr := range t.Headers {
		line := dv.at("transform.headers." + name)
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validHeaderName(name):
			dv.add(line, "%s: transform.headers: %q is not a valid HTTP header name", dv.label, name)
		case strings.EqualFold(canon, "Content-Type"):
			dv.add(line, "%s: transform.headers: set Content-Type with transform.content_type", dv.label)
		case isRelayHeader(canon):
			dv.add(line, "%s: transform.headers: %s is set by Relay and cannot be replaced", dv.label, canon)
		}
		if err := checkJQ(expr); err != nil {
			dv.add(line, "%s: transform.headers.%s: %v", dv.label, name, err)
		}
	}
	if t.Body == "" && t.Format == "" && t.ContentType == "" && len(t.Headers) == 0 {
		dv.add(dv.at("transform"), "%s: transform sets nothing; give body, format, content_type or headers, or remove it", dv.label)
	}
}

func isRelayHeader(canon string) bool {
	for _, h := range relayHeaders {
		if strings.EqualFold(h, canon) {
			return true
		}
	}
	return false
}
