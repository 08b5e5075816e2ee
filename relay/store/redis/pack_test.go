package redis

import (
	"maps"
	"testing"
)

// unpackEvent gives back exactly what packEvent packed, whatever the bytes.
func TestPackEventRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		vals [len(packedFields)]string
		body string
	}{
		{[...]string{"evt_1", "1001", "1234-1333-XXXXX", "application/json", "1764127200123456789", `["crm","archive"]`}, `{"mid":"1234"}`},
		{[...]string{"x", "", "", "", "", "[]"}, ""},
		{[...]string{"evt_2", "a:b", "12:34\n5", "text/plain; charset=\"x:y\"", "1", `["a:1"]`}, "9:\x00\xff body with 3:abc"},
	} {
		h := map[string]string{"e": packEvent(tc.vals, []byte(tc.body)), "ca": "42", "nd": "2", "out": "1"}
		if err := unpackEvent(h); err != nil {
			t.Fatalf("unpackEvent(%q): %v", tc.vals, err)
		}
		want := map[string]string{"ca": "42", "nd": "2", "out": "1", "body": tc.body}
		for i, name := range packedFields {
			want[name] = tc.vals[i]
		}
		if want["rcv"] == "" {
			want["rcv"] = "42" // stamped by the script: its "ca"
		}
		if !maps.Equal(h, want) {
			t.Errorf("unpacked %q, want %q", h, want)
		}
	}
}

// A "dests" field (written by replay_parked) wins over the packed one; a
// missing or damaged "e" is an error, not a wrong event.
func TestUnpackEvent(t *testing.T) {
	h := map[string]string{
		"e":     packEvent([...]string{"evt_1", "1001", "", "", "5", "[]"}, []byte("b")),
		"dests": `["crm"]`, "parked": "0",
	}
	if err := unpackEvent(h); err != nil || h["dests"] != `["crm"]` || h["id"] != "evt_1" {
		t.Fatalf("unpackEvent = %v, %q", err, h)
	}
	good := packEvent([...]string{"evt_1", "1001", "", "", "", "[]"}, nil)
	for _, bad := range []string{"", "2" + good[1:], "1", "15:evt_1", "1x:evt_1", "1-1:", good[:len(good)-1]} {
		if err := unpackEvent(map[string]string{"e": bad}); err == nil {
			t.Errorf("unpackEvent(%q) = nil, want an error", bad)
		}
	}
}
