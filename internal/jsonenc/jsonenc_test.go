package jsonenc

import (
	"encoding/json"
	"testing"
)

func TestAppendStringMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "evt_01ABC", "a\"b", `back\slash`, "<&>", "tab\there", "ünï", "bad\xffutf8", "line\u2028sep"} {
		want, _ := json.Marshal(s)
		if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendString(%q) = %s, want x%s", s, got, want)
		}
	}
}
