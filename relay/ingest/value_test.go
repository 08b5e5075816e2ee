package ingest

import (
	"math/big"
	"reflect"
	"testing"
)

func TestDecodeJSONSeed(t *testing.T) {
	got, err := DecodeJSON(readTestdata(t, "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"bridge": "91806828XXXX", "from": "91891952XXXX", "to": "91886713XXXX",
		"source": "OBD", "mid": "1234-1333-XXXXX", "flow_id": 123,
		"start_at": "2021-04-09 16:27:39", "end_at": "2021-04-09 16:27:55",
		"duration": "23", "status": "ANSWER", "recording_url": "https://youraudiofilelocation/",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeJSON(seed) =\n%#v\nwant\n%#v", got, want)
	}
}

func TestDecodeJSONValues(t *testing.T) {
	big1, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	tests := []struct {
		body string
		want map[string]any
	}{
		{`{"n": 123456789012345678901234567890}`, map[string]any{"n": big1}},
		{`{"i": -42, "z": -0, "f": 1.50, "e": -1.5e+10, "tiny": 2E-3}`,
			map[string]any{"i": -42, "z": 0, "f": 1.5, "e": -1.5e10, "tiny": 0.002}},
		{`{"masked": 91806828XXXX, "plus": +5, "lead": 0123, "dot": 1., "inf": 1e999}`,
			map[string]any{"masked": "91806828XXXX", "plus": "+5", "lead": "0123", "dot": "1.", "inf": "1e999"}},
		{`{"t": true, "f": false, "n": null}`, map[string]any{"t": true, "f": false, "n": nil}},
		{`{"a": [1, "x", {"b": [],},], "o": {},}`, map[string]any{"a": []any{1, "x", map[string]any{"b": []any{}}}, "o": map[string]any{}}},
		{`{"k": "first", "k": "second"}`, map[string]any{"k": "first"}},
		{`{"u": "Zo\u00eb \ud83d\ude00 \ud800", "raw": "é"}`, map[string]any{"u": "Zoë 😀 \uFFFD", "raw": "é"}},
	}
	for _, tt := range tests {
		got, err := DecodeJSON([]byte(tt.body))
		if err != nil {
			t.Errorf("DecodeJSON(%s): %v", tt.body, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeJSON(%s) =\n%#v\nwant\n%#v", tt.body, got, tt.want)
		}
	}
}

func TestValueKinds(t *testing.T) {
	v, err := Value(KindForm, []byte("a=1&b=x%20y&a=2"))
	if err != nil || !reflect.DeepEqual(v, map[string]any{"a": "1", "b": "x y"}) {
		t.Errorf("Value(form) = %#v, %v", v, err)
	}
	if _, err := Value(KindOther, []byte("hello")); err != ErrNotReadable {
		t.Errorf("Value(other) error = %v, want ErrNotReadable", err)
	}
}
