package ingest

import (
	"bytes"
	"encoding/json"
	"maps"
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzExtractJSON checks properties that hold for every input:
//   - ExtractJSON never panics, and returns fields or an error, not both;
//   - its fields survive a round trip: written back as a JSON object of
//     strings and read again, they come back unchanged (bytes included);
//   - in an input without escapes, each field appears as "key": value;
//   - where encoding/json accepts the input as an object of scalars with no
//     duplicate keys, ExtractJSON accepts it too and yields the same keys and
//     the same values.
func FuzzExtractJSON(f *testing.F) {
	f.Add(readTestdata(f, "seed.json"))
	for _, s := range []string{
		`{}`, `{"a":"x","b":""}`, `{"a":1,}`, `{"a":[1,2,],"b":{"c":1,},"d":"x",}`,
		"\xEF\xBB\xBF{\"a\":\"b\"}", "{\r\n\t\"a\"\t:\r\n 1\r\n}\r\n",
		`{"n":1234567890123456789012345678901234567890}`,
		`{"a":-0,"b":1.50,"c":-1.5e+10,"d":2E-3}`, `{"t":true,"f":false,"n":null}`,
		`{"bridge":91806828XXXX}`, `{"a":+91891952,"b":-5x}`,
		`{"a":"q\"b\\s\/n\nr\rt\tb\bf\f"}`, `{"k\"ey\u0041":"v"}`,
		`{"a":"\ud83d\ude00"}`, `{"a":"x\ud800y"}`, `{"a":"\ud800\u0041"}`,
		"{\"a\":\"\xff\xfe\x80\"}", `{"n":{"s":"}{]\"[","t":[{"u":"}"}]},"after":"ok"}`,
		`{"a":"1","a":"2"}`, `{"a":{"x":1},"a":"2"}`,
		`[1]`, `{"a":1} x`, `{"a":"b`, `{"a":1`, `{"a" 1}`, `{"a":foo}`, `{,}`,
		`{"a":1 "b":2}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":'x'}`,
		strings.Repeat("[", 70) + strings.Repeat("]", 70),
		`{"a":` + strings.Repeat("{\"b\":", 70) + "1" + strings.Repeat("}", 71),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		got, err := ExtractJSON(in)
		if !bytes.Equal(in, orig) {
			t.Fatalf("ExtractJSON modified its input")
		}
		if err != nil {
			if got != nil {
				t.Fatalf("ExtractJSON(%q) returned fields %q with error %v", in, got, err)
			}
		} else {
			checkRoundTrip(t, in, got)
			checkWritten(t, in, got)
		}
		checkAgainstEncodingJSON(t, in, got, err)
		checkOnly(t, in, got, err)
		checkDecode(t, in, got, err)
	})
}

// checkDecode checks that DecodeJSON, jq's reader, accepts and refuses
// exactly what ExtractJSON does, with the same error, and gives every
// quoted string field the same text and every integer field the same
// digits.
func checkDecode(t *testing.T, in []byte, fields Fields, ferr error) {
	t.Helper()
	v, err := DecodeJSON(in)
	if (err == nil) != (ferr == nil) || (err != nil && err.Error() != ferr.Error()) {
		t.Fatalf("DecodeJSON(%q) error = %v, ExtractJSON's = %v", in, err, ferr)
	}
	for k, text := range fields {
		switch x := v[k].(type) {
		case string:
			if x != text {
				t.Fatalf("DecodeJSON(%q)[%q] = %q, ExtractJSON has %q", in, k, x, text)
			}
		case int:
			if n, ok := new(big.Int).SetString(text, 10); !ok || !n.IsInt64() || n.Int64() != int64(x) {
				t.Fatalf("DecodeJSON(%q)[%q] = %d, ExtractJSON has %q", in, k, x, text)
			}
		case *big.Int:
			if x.String() != text {
				t.Fatalf("DecodeJSON(%q)[%q] = %s, ExtractJSON has %q", in, k, x, text)
			}
		}
	}
}

// checkOnly checks that reading only some keys (extractOnly, for bodies
// routing ignores) gives exactly those keys' fields of ExtractJSON, and the
// same error: the keys it found, one it did not, and the ones of objects in
// the fuzz seeds ("a" of {"a":{"x":1},"a":"2"} must stay absent).
func checkOnly(t *testing.T, in []byte, all Fields, allErr error) {
	t.Helper()
	keep := []string{"a", "mid", "n", "absent"}
	for k := range all {
		keep = append(keep, k)
	}
	got, err := extractOnly(KindJSON, in, keep)
	if (err == nil) != (allErr == nil) || (err != nil && err.Error() != allErr.Error()) {
		t.Fatalf("extractOnly(%q) error %v, ExtractJSON's %v", in, err, allErr)
	}
	if err != nil {
		if got != nil {
			t.Fatalf("extractOnly(%q) returned fields %q with error %v", in, got, err)
		}
		return
	}
	want := Fields{}
	for _, k := range keep {
		if v, ok := all[k]; ok {
			want[k] = v
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("extractOnly(%q, %q) = %q, want %q", in, keep, got, want)
	}
	if one, _ := extractOnly(KindJSON, in, []string{"mid"}); len(one) > 1 {
		t.Fatalf("extractOnly(%q, [mid]) = %q, more than asked for", in, one)
	}
}

// checkRoundTrip writes fields as a JSON object of strings, escaping only what
// JSON requires, and reads it back.
func checkRoundTrip(t *testing.T, in []byte, got Fields) {
	t.Helper()
	var b []byte
	b = append(b, '{')
	for k, v := range got {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	}
	b = append(b, '}')
	again, err := ExtractJSON(b)
	if err != nil {
		t.Fatalf("re-encoded fields of %q do not parse: %v\n%s", in, err, b)
	}
	if !maps.Equal(again, got) {
		t.Fatalf("round trip of %q changed fields: %q, then %q", in, got, again)
	}
}

// appendJSONString quotes s, leaving invalid UTF-8 alone (encoding/json
// would replace it).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// checkWritten checks, for inputs without escapes (where decoding is the
// identity), that every field was written in the input as "key": followed by
// its value, quoted or bare.
func checkWritten(t *testing.T, in []byte, got Fields) {
	t.Helper()
	if bytes.IndexByte(in, '\\') >= 0 {
		return
	}
	for k, v := range got {
		if !writtenAs(in, k, v) {
			t.Fatalf("ExtractJSON(%q) gave %q = %q, which the input does not contain as a member", in, k, v)
		}
	}
}

// writtenAs reports whether in holds "key" : value somewhere.
func writtenAs(in []byte, key, value string) bool {
	quoted := []byte(`"` + key + `"`)
	for off := 0; ; {
		i := bytes.Index(in[off:], quoted)
		if i < 0 {
			return false
		}
		rest := skipWS(in[off+i+len(quoted):])
		off += i + 1
		if len(rest) == 0 || rest[0] != ':' {
			continue
		}
		rest = skipWS(rest[1:])
		if bytes.HasPrefix(rest, []byte(`"`+value+`"`)) {
			return true
		}
		if bytes.HasPrefix(rest, []byte(value)) && (len(rest) == len(value) || !isBareByte(rest[len(value)])) {
			return true
		}
	}
}

func skipWS(b []byte) []byte {
	return bytes.TrimLeft(b, " \t\r\n")
}

// checkAgainstEncodingJSON compares with encoding/json on the inputs where
// the two must agree.
func checkAgainstEncodingJSON(t *testing.T, in []byte, got Fields, err error) {
	t.Helper()
	// encoding/json replaces invalid UTF-8, which ExtractJSON keeps.
	if !utf8.Valid(in) || !json.Valid(in) {
		return
	}
	want, ok := scalarObject(in)
	if !ok {
		return
	}
	if err != nil {
		t.Fatalf("ExtractJSON(%q) failed where encoding/json succeeds: %v", in, err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("ExtractJSON(%q) = %q, encoding/json reads %q", in, got, want)
	}
}

// scalarObject reads a valid JSON document with encoding/json and returns its
// fields as text, if it is an object of scalars without duplicate keys.
func scalarObject(in []byte) (Fields, bool) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := Fields{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key := tok.(string)
		if tok, err = dec.Token(); err != nil {
			return nil, false
		}
		if _, dup := out[key]; dup {
			return nil, false
		}
		switch v := tok.(type) {
		case string:
			out[key] = v
		case json.Number:
			out[key] = string(v)
		case bool:
			out[key] = map[bool]string{true: "true", false: "false"}[v]
		case nil:
			out[key] = "null"
		default: // an object or array
			return nil, false
		}
	}
	return out, true
}
