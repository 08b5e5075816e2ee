package bolt

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/relaygw/relay/relay/store"
)

// tricky are strings that encoding/json escapes in its own ways.
var tricky = []string{
	"", "plain-ASCII_1001", `quote "`, `back\slash`, "1 < 2", "3 > 2", "a & b", "tab\tnewline\n\x00",
	"naïve café 日本", "bad utf-8 \xff\xfe", "line\u2028separator\u2029", "\x7f del",
}

// filled sets every exported field of the struct p points to (embedded
// structs included) to a non-zero value, so that a field added to the
// records later shows up in json.Marshal's output, or is lost by the binary
// form, and the test comparing them fails until the encoder learns it.
func filled(t testing.TB, p any) any {
	t.Helper()
	fill(t, reflect.ValueOf(p).Elem())
	return p
}

func fill(t testing.TB, v reflect.Value) {
	t.Helper()
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if !sf.IsExported() || sf.Tag.Get("json") == "-" {
			continue
		}
		switch {
		case sf.Type == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(time.Date(2024, 2, 29, 23, 59, 59, 1, time.UTC)))
		case sf.Anonymous && f.Kind() == reflect.Struct:
			fill(t, f)
		case f.Kind() == reflect.String:
			f.SetString("v-" + sf.Name)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(7)
		case f.Kind() == reflect.Slice && sf.Type.Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf([]string{"a-" + sf.Name, "b"}))
		case f.Kind() == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(sf.Type.Elem()))
			fill(t, f.Elem())
		default:
			t.Fatalf("field %s of type %s: teach fill (and the encoders in encode.go and binary.go) about it", sf.Name, sf.Type)
		}
	}
}

func TestAppendAttemptMatchesMarshal(t *testing.T) {
	at := time.Date(2021, 4, 9, 16, 27, 39, 120000000, time.Local)
	var as []*store.Attempt
	for _, s := range tricky {
		as = append(as,
			&store.Attempt{N: 2, At: at, Duration: 1500 * time.Microsecond, Status: 500, Error: s, Response: s},
			&store.Attempt{N: 1, At: at.UTC(), Error: s},
			&store.Attempt{Response: s, Duration: -1, Status: -1},
		)
	}
	as = append(as, filled(t, &store.Attempt{}).(*store.Attempt))
	for _, a := range as {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendAttemptRec(nil, a)
		if !ok || string(got) != string(want) {
			t.Errorf("appendAttemptRec(%+v) = %v\n got %s\nwant %s", a, ok, got, want)
		}
	}
}

// TestEncodersRefuseWhatMarshalRefuses covers times outside JSON's range:
// the encoders step aside so that json.Marshal reports them.
func TestEncodersRefuseWhatMarshalRefuses(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
	} {
		a := &store.Attempt{At: at}
		if _, err := json.Marshal(a); err == nil {
			t.Fatalf("json.Marshal accepts %v; the test needs a time it refuses", at)
		}
		if _, ok := appendAttemptRec(nil, a); ok {
			t.Errorf("appendAttemptRec encoded at %v, which json.Marshal refuses", at)
		}
	}
}
