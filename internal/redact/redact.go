package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces what is hidden.
const Mask = "xxxxx"

// URL returns u with its user name, password and every query value
// replaced by Mask and without its fragment, as go-retryablehttp's
// redactURL does for the password. The user name goes too: some services
// take the API key there (https://KEY@api.example/). Query keys stay: they
// say what was sent without saying what.
func URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := *u
	if r.User != nil {
		name := r.User.Username()
		if name != "" {
			name = Mask
		}
		if _, has := r.User.Password(); has {
			r.User = url.UserPassword(name, Mask)
		} else {
			r.User = url.User(name)
		}
	}
	r.Fragment, r.RawFragment = "", ""
	if r.RawQuery != "" {
		r.RawQuery = query(r.RawQuery)
	}
	r.ForceQuery = false
	return r.String()
}

// query masks the values of a raw query, keeping its keys in order.
func query(raw string) string {
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok {
			parts[i] = k + "=" + Mask
		} else if strings.Contains(p, ";") {
			parts[i] = Mask
		}
	}
	return strings.Join(parts, "&")
}

// String is URL for a raw URL. One that does not parse is not shown at
// all: which part of it is the secret cannot be told.
func String(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return URL(u)
}

// quoted matches the pieces of its input that url.Parse quotes in its
// errors (`invalid port ":Pa55" after host`).
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// Error returns err's text with raw, the URL it is about, never shown: a
// *url.Error's own text is its operation and cause, without the URL, and
// any quoted piece of the cause is masked (url.Parse quotes the part it
// could not read, which may be a password). Other occurrences of raw are
// replaced by its redacted form.
func Error(err error, raw string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = quoted.ReplaceAllString(ue.Err.Error(), `"`+Mask+`"`)
		if ue.Op != "parse" { // "parse" adds nothing to "not a valid URL"
			msg = strings.ToLower(ue.Op) + ": " + msg
		}
	}
	if raw != "" && strings.Contains(msg, raw) {
		msg = strings.ReplaceAll(msg, raw, String(raw))
	}
	return msg
}
