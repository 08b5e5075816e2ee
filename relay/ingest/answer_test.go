package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestAppendAnswerMatchesEncoder(t *testing.T) {
	if n := reflect.TypeOf(answer{}).NumField(); n != 5 {
		t.Fatalf("answer has %d fields, appendAnswer knows 5: teach it the new ones", n)
	}
	n, zero := 2, 0
	texts := []string{
		"", "accepted", "evt_01J9Z3K4N5P6Q7R8S9T0VWXYZA", `say "hi"`, `back\slash`, "1 < 2", "2 > 1", "a & b",
		"tab\tnewline\n\x00", "naïve café 日本", "bad utf-8 \xff", "line\u2028sep", "\x7f",
	}
	var answers []answer
	for _, s := range texts {
		answers = append(answers,
			answer{Status: s},
			answer{Status: "accepted", EventID: s, Deliveries: &n},
			answer{Status: "accepted", EventID: s, Deliveries: &zero, Parked: true},
			answer{Status: "error", Error: s},
		)
	}
	for _, a := range answers {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(a); err != nil {
			t.Fatal(err)
		}
		if got := appendAnswer(nil, a); string(got) != want.String() {
			t.Errorf("appendAnswer(%+v)\n got %q\nwant %q", a, got, want.String())
		}
	}
}
