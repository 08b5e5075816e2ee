package ingest

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readTestdata returns the bytes of testdata/name.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// seedFields is what the provider's documented example body must yield.
var seedFields = Fields{
	"bridge":        "91806828XXXX",
	"from":          "91891952XXXX",
	"to":            "91886713XXXX",
	"source":        "OBD",
	"mid":           "1234-1333-XXXXX",
	"flow_id":       "123",
	"start_at":      "2021-04-09 16:27:39",
	"end_at":        "2021-04-09 16:27:55",
	"duration":      "23",
	"status":        "ANSWER",
	"recording_url": "https://youraudiofilelocation/",
}

func TestExtractJSONSeed(t *testing.T) {
	body := readTestdata(t, "seed.json")
	// Guard the fixture itself: it must stay the provider's example verbatim,
	// trailing comma and masked bare numbers included.
	if !strings.Contains(string(body), `"recording_url": "https://youraudiofilelocation/",`+"\n}") ||
		!strings.Contains(string(body), `"bridge": 91806828XXXX,`) {
		t.Fatalf("testdata/seed.json no longer holds the provider's example verbatim:\n%s", body)
	}
	got, err := ExtractJSON(body)
	if err != nil {
		t.Fatalf("ExtractJSON(seed): %v", err)
	}
	if !maps.Equal(got, seedFields) {
		t.Errorf("ExtractJSON(seed) =\n%v\nwant\n%v", got, seedFields)
	}
}

func TestExtractJSON(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)
	tests := []struct {
		name string
		body string
		want Fields
	}{
		{"empty object", `{}`, Fields{}},
		{"empty object with space", " \r\n\t{ \r\n\t} \r\n\t", Fields{}},
		{"strings", `{"a":"x","b":""}`, Fields{"a": "x", "b": ""}},
		{"empty key", `{"":"v"}`, Fields{"": "v"}},
		{"trailing comma", `{"a":1,}`, Fields{"a": "1"}},
		{"trailing comma and space", "{\"a\":1 ,\n}", Fields{"a": "1"}},
		{"trailing commas nested", `{"a":[1,2,],"b":{"c":1,},"d":"x",}`, Fields{"d": "x"}},
		{"bom", "\xEF\xBB\xBF{\"a\":\"b\"}", Fields{"a": "b"}},
		{"crlf and tabs", "{\r\n\t\"a\"\t:\r\n 1\r\n}\r\n", Fields{"a": "1"}},
		{"40-digit integer", `{"n":1234567890123456789012345678901234567890}`,
			Fields{"n": "1234567890123456789012345678901234567890"}},
		{"numbers verbatim", `{"a":-0,"b":1.50,"c":-1.5e+10,"d":2E-3,"e":0.1}`,
			Fields{"a": "-0", "b": "1.50", "c": "-1.5e+10", "d": "2E-3", "e": "0.1"}},
		{"literals", `{"t":true,"f":false,"n":null}`, Fields{"t": "true", "f": "false", "n": "null"}},
		{"masked bare number", `{"bridge":91806828XXXX}`, Fields{"bridge": "91806828XXXX"}},
		{"bare with sign", `{"a":+91891952,"b":-5x}`, Fields{"a": "+91891952", "b": "-5x"}},
		{"bare hex", `{"a":0x1F}`, Fields{"a": "0x1F"}},
		{"simple escapes", `{"a":"q\"b\\s\/n\nr\rt\tb\bf\f"}`, Fields{"a": "q\"b\\s/n\nr\rt\tb\bf\f"}},
		{"escaped key", `{"k\"ey\u0041":"v"}`, Fields{"k\"eyA": "v"}},
		{"unicode escapes", `{"a":"caf\u00e9 \u20AC"}`, Fields{"a": "café €"}},
		{"surrogate pair", `{"a":"\ud83d\ude00"}`, Fields{"a": "😀"}},
		{"lone high surrogate", `{"a":"x\ud800y"}`, Fields{"a": "x\uFFFDy"}},
		{"lone low surrogate", `{"a":"\udc00"}`, Fields{"a": "\uFFFD"}},
		{"high then non-surrogate", `{"a":"\ud800\u0041"}`, Fields{"a": "\uFFFDA"}},
		{"high then pair", `{"a":"\ud800\ud83d\ude00"}`, Fields{"a": "\uFFFD😀"}},
		{"raw utf-8", `{"a":"日本"}`, Fields{"a": "日本"}},
		{"invalid utf-8 passed through", "{\"a\":\"\xff\xfe\x80\"}", Fields{"a": "\xff\xfe\x80"}},
		{"invalid utf-8 with escape", "{\"a\":\"\xff\\n\xc3\"}", Fields{"a": "\xff\n\xc3"}},
		{"raw control characters passed through", "{\"a\":\"l1\nl2\x01\"}", Fields{"a": "l1\nl2\x01"}},
		{"nested skipped", `{"n":{"s":"}{]\"[","t":[{"u":"}"},[],{}]},"after":"ok"}`, Fields{"after": "ok"}},
		{"nested with escaped key", `{"n":{"k\u0041":1,"k\"":2},"m":3}`, Fields{"m": "3"}},
		{"array value skipped", `{"a":[1,"]",true,null,{"b":[]}],"z":0}`, Fields{"z": "0"}},
		{"duplicate first wins", `{"a":"1","a":"2"}`, Fields{"a": "1"}},
		{"duplicate after nested first wins", `{"a":{"x":1},"a":"2","b":[],"b":3}`, Fields{}},
		{"duplicate after escaped nested key", `{"\u0061":{"\u0062":1},"a":"2"}`, Fields{}},
		{"nested then scalar other key", `{"a":{"x":1},"b":"2"}`, Fields{"b": "2"}},
		{"max depth", `{"a":` + deep + `,"b":1}`, Fields{"b": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExtractJSON([]byte(tt.body))
			if err != nil {
				t.Fatalf("ExtractJSON(%q): %v", tt.body, err)
			}
			if got == nil || !maps.Equal(got, tt.want) {
				t.Errorf("ExtractJSON(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestExtractJSONErrors(t *testing.T) {
	tooDeep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	tests := []struct {
		name    string
		body    string
		offset  int
		message string
	}{
		{"empty", ``, 0, "empty body"},
		{"only space", " \n ", 3, "empty body"},
		{"only bom", "\xEF\xBB\xBF", 3, "empty body"},
		{"array", `[1]`, 0, "must be an object"},
		{"string", ` "s"`, 1, "must be an object"},
		{"number", `12`, 0, "must be an object"},
		{"bom twice", "\xEF\xBB\xBF\xEF\xBB\xBF{}", 3, "must be an object"},
		{"garbage after", `{"a":1} x`, 8, `unexpected 'x' after the top-level object`},
		{"second object", `{"a":1}{}`, 7, "after the top-level object"},
		{"nul after", "{}\x00", 2, "byte 0x00"},
		{"unterminated string value", `{"a":"b`, 5, "unterminated string"},
		{"unterminated string key", `{"ab`, 1, "unterminated string"},
		{"unterminated after escaped quote", `{"a":"\"`, 5, "unterminated string"},
		{"unterminated escape", `{"a":"x\`, 5, "unterminated string"},
		{"unterminated object", `{"a":1`, 0, "unterminated object"},
		{"unterminated object after comma", `{"a":1,`, 0, "unterminated object"},
		{"unterminated nested object", `{"a":{"b":1`, 5, "unterminated object"},
		{"unterminated array", `{"a":[1,`, 5, "unterminated array"},
		{"value missing at end", `{"a":`, 5, "expected a value, found end of body"},
		{"value missing", `{"a":}`, 5, "expected a value, found '}'"},
		{"single quotes", `{"a":'x'}`, 5, "expected a value"},
		{"missing colon", `{"a" 1}`, 5, `missing ':' after key "a"`},
		{"missing colon at end", `{"a"`, 4, "missing ':'"},
		{"bare key", `{a:1}`, 1, "expected a string key"},
		{"leading comma", `{,}`, 1, "expected a string key"},
		{"double comma", `{"a":1,,}`, 7, "expected a string key"},
		{"missing comma", `{"a":1 "b":2}`, 7, "expected ',' or '}'"},
		{"missing comma in array", `{"a":[1 2]}`, 8, "expected ',' or ']'"},
		{"array closed by brace", `{"a":[1,2}`, 9, "expected ',' or ']'"},
		{"array double comma", `{"a":[1,,2]}`, 8, "expected a value"},
		{"bare word", `{"a":foo}`, 5, `invalid bare word "foo"`},
		{"capitalised literal", `{"a":True}`, 5, `invalid bare word "True"`},
		{"literal with suffix", `{"a":nullx}`, 5, `invalid bare word "nullx"`},
		{"lone minus", `{"a":-}`, 5, `invalid bare word "-"`},
		{"leading dot", `{"a":.5}`, 5, `invalid bare word ".5"`},
		{"nan", `{"a":NaN}`, 5, `invalid bare word "NaN"`},
		{"long bare word is cut in the message", `{"a":` + strings.Repeat("x", 100) + `}`, 5,
			`invalid bare word "` + strings.Repeat("x", 40) + `":`},
		{"bare word in array", `{"a":[1,x]}`, 8, `invalid bare word "x"`},
		{"invalid escape", `{"a":"\x"}`, 6, `invalid escape \x`},
		{"short unicode escape", `{"a":"\u12"}`, 6, `invalid \u escape`},
		{"bad hex", `{"a":"\u12G4"}`, 6, `invalid \u escape`},
		{"too deep", `{"a":` + tooDeep + `}`, 5 + MaxDepth - 1, "nesting deeper than 64 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExtractJSON([]byte(tt.body))
			if err == nil {
				t.Fatalf("ExtractJSON(%q) = %q, want error", tt.body, got)
			}
			if got != nil {
				t.Errorf("ExtractJSON(%q) returned fields %q with error", tt.body, got)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
			}
			if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.message) {
				t.Errorf("ExtractJSON(%q) error at offset %d %q, want offset %d containing %q",
					tt.body, se.Offset, se.Msg, tt.offset, tt.message)
			}
			if !strings.HasPrefix(err.Error(), "ingest: json body: offset ") {
				t.Errorf("error text %q lacks the package prefix and offset", err)
			}
		})
	}
}

// TestExtractJSONDoesNotRetainBody guards against zero-copy tricks: the
// handler may reuse the body buffer once fields are extracted.
func TestExtractJSONDoesNotRetainBody(t *testing.T) {
	body := []byte(`{"plain":"abc","esc":"a\nb","num":42,"lit":true}`)
	got, err := ExtractJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(got)
	for i := range body {
		body[i] = 'z'
	}
	if !maps.Equal(got, want) {
		t.Errorf("fields changed with the body buffer: %q, want %q", got, want)
	}
}

func TestExtractForm(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Fields
	}{
		{"empty", ``, Fields{}},
		{"pairs", `webhook_id=1001&mid=1234-1333-XXXXX&flow_id=123`,
			Fields{"webhook_id": "1001", "mid": "1234-1333-XXXXX", "flow_id": "123"}},
		{"first value wins", `a=1&a=2`, Fields{"a": "1"}},
		{"plus and percent", `a+b=c%20d+e%2B`, Fields{"a b": "c d e+"}},
		{"utf-8 escape", `n=caf%C3%A9`, Fields{"n": "café"}},
		{"key without value", `flag&x=1`, Fields{"flag": "", "x": "1"}},
		{"empty pairs skipped", `&a=1&&b=2&`, Fields{"a": "1", "b": "2"}},
		{"semicolon is data", `a=1;b=2`, Fields{"a": "1;b=2"}},
		{"equals in value", `k=a=b`, Fields{"k": "a=b"}},
		{"empty key", `=v`, Fields{"": "v"}},
		{"long number verbatim", `n=91806828123456789012345`, Fields{"n": "91806828123456789012345"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExtractForm([]byte(tt.body))
			if err != nil {
				t.Fatalf("ExtractForm(%q): %v", tt.body, err)
			}
			if got == nil || !maps.Equal(got, tt.want) {
				t.Errorf("ExtractForm(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestExtractFormErrors(t *testing.T) {
	tests := []struct {
		body string
		want string
	}{
		{`a=%zz`, `ingest: form body: offset 0: value of "a"`},
		{`ok=1&b%=1`, "ingest: form body: offset 5: key"},
		{`a=%4`, "offset 0"},
	}
	for _, tt := range tests {
		got, err := ExtractForm([]byte(tt.body))
		if err == nil {
			t.Errorf("ExtractForm(%q) = %q, want error", tt.body, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ExtractForm(%q) error %q, want it to contain %q", tt.body, err, tt.want)
		}
	}
}

func TestKind(t *testing.T) {
	obj := `{"a":1}`
	tests := []struct {
		contentType string
		body        string
		want        BodyKind
	}{
		{"application/json", obj, KindJSON},
		{"application/json", `[1]`, KindJSON}, // ExtractJSON then says why it cannot route
		{"Application/JSON; charset=utf-8", obj, KindJSON},
		{" application/json ;charset=utf-8", obj, KindJSON},
		{"text/json", obj, KindJSON},
		{"application/vnd.provider.callback+json", obj, KindJSON},
		{"application/x-www-form-urlencoded", `a=1`, KindForm},
		{"application/x-www-form-urlencoded; charset=UTF-8", `a=1`, KindForm},
		{"application/x-www-form-urlencoded", ``, KindForm},
		{"application/x-www-form-urlencoded", "\n " + obj, KindJSON}, // a JSON string mislabelled by the client
		{"", obj, KindJSON},
		{"", "\xEF\xBB\xBF\r\n\t " + obj, KindJSON},
		{"", `a=1`, KindOther},
		{"", ``, KindOther},
		{"", "   ", KindOther},
		{"text/plain", obj, KindJSON},
		{"text/plain; charset=utf-8", obj, KindJSON},
		{"text/plain", `hello`, KindOther},
		{"application/octet-stream", obj, KindJSON},
		{"application/octet-stream", "\x00\x01", KindOther},
		{"application/xml", `<a/>`, KindOther},
		{"application/xml", obj, KindOther},
		{"multipart/form-data; boundary=x", `--x`, KindOther},
		{"text/html", obj, KindOther},
	}
	for _, tt := range tests {
		if got := Kind(tt.contentType, []byte(tt.body)); got != tt.want {
			t.Errorf("Kind(%q, %q) = %v, want %v", tt.contentType, tt.body, got, tt.want)
		}
	}
}

func TestBodyKindString(t *testing.T) {
	for k, want := range map[BodyKind]string{KindJSON: "json", KindForm: "form", KindOther: "other", BodyKind(99): "other"} {
		if got := k.String(); got != want {
			t.Errorf("BodyKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func BenchmarkExtractJSON(b *testing.B) {
	body := readTestdata(b, "seed.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ExtractJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKind(b *testing.B) {
	body := readTestdata(b, "seed.json")
	b.ReportAllocs()
	for b.Loop() {
		if Kind("application/json; charset=utf-8", body) != KindJSON {
			b.Fatal("not json")
		}
	}
}

func TestExtractByKind(t *testing.T) {
	tests := []struct {
		kind    BodyKind
		body    string
		want    Fields
		wantErr bool
	}{
		{KindJSON, `{"mid":"m1",}`, Fields{"mid": "m1"}, false},
		{KindJSON, `{"mid":`, nil, true},
		{KindForm, `mid=m2&x=1`, Fields{"mid": "m2", "x": "1"}, false},
		{KindOther, `{"mid":"m3"}`, nil, false},
	}
	for _, tc := range tests {
		got, err := Extract(tc.kind, []byte(tc.body))
		if (err != nil) != tc.wantErr || !maps.Equal(got, tc.want) {
			t.Errorf("Extract(%v, %q) = %v, %v; want %v (error %v)", tc.kind, tc.body, got, err, tc.want, tc.wantErr)
		}
	}
}
