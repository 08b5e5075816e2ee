package transform_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/transform"
)

// seedBody is the provider's documented callback, verbatim: a trailing
// comma, bare masked numbers, a quoted duration.
func seedBody(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func input(t *testing.T, ct string, body []byte) any {
	t.Helper()
	v, err := transform.Input(ct, body)
	if err != nil {
		t.Fatalf("Input(%q): %v", body, err)
	}
	return v
}

func compile(t *testing.T, src string) *transform.Expr {
	t.Helper()
	e, err := transform.Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return e
}

func TestFilterOnSeed(t *testing.T) {
	seed := input(t, "application/json", seedBody(t))
	tests := []struct {
		filter  string
		want    bool
		wantErr string
	}{
		{filter: `.status == "ANSWER"`, want: true},
		{filter: `.status == "ANSWER" and (.duration|tonumber) > 10`, want: true},
		{filter: `(.duration|tonumber) > 30`, want: false},
		{filter: `.bridge == "91806828XXXX"`, want: true}, // a bare token is a string
		{filter: `.flow_id == 123 and (.flow_id|type) == "number"`, want: true},
		{filter: `.recording_url | startswith("https://")`, want: true},
		{filter: `.missing == null`, want: true},
		{filter: `.missing.deeper`, want: false}, // null is not true
		{filter: `"true"`, want: false},          // only the boolean true matches
		{filter: `1`, want: false},
		{filter: `empty`, want: false},
		{filter: `true, false`, want: true}, // the first output decides
		{filter: `false, true`, want: false},
		{filter: `.status | tonumber > 1`, wantErr: "cannot be applied"},
		{filter: `error("no")`, wantErr: "no"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got, err := compile(t, tt.filter).Test(context.Background(), seed, roomyLimits)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, transform.ErrTransform) {
					t.Fatalf("Test = %v, %v; want an ErrTransform containing %q", got, err, tt.wantErr)
				}
				if got {
					t.Error("a failed filter matched")
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Test = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	seed := seedBody(t)
	tests := []struct {
		name      string
		ct        string
		body      []byte
		tr        config.Transform
		wantBody  string // "" with keep: the original bytes
		keep      bool
		wantCT    string
		wantHdr   map[string]string
		wantErr   string
		wantInput bool // the error is about reading the body
	}{
		{name: "crm rename", ct: "application/json", body: seed,
			tr:       config.Transform{Body: `{phone: .to, outcome: .status, seconds: (.duration|tonumber)}`},
			wantBody: `{"outcome":"ANSWER","phone":"91886713XXXX","seconds":23}`, wantCT: "application/json"},
		{name: "form output", ct: "application/json", body: seed,
			tr:       config.Transform{Body: `{phone: .to, status, secs: (.duration|tonumber), tags: ["a", "b"], none: null}`, Format: "form"},
			wantBody: "none=&phone=91886713XXXX&secs=23&status=ANSWER&tags=a&tags=b", wantCT: "application/x-www-form-urlencoded"},
		{name: "recording under the client's key", ct: "application/json", body: seed,
			tr:       config.Transform{Body: `{call: .mid, audio: {href: .recording_url}}`, ContentType: "application/vnd.acme+json"},
			wantBody: `{"audio":{"href":"https://youraudiofilelocation/"},"call":"1234-1333-XXXXX"}`, wantCT: "application/vnd.acme+json"},
		{name: "whole seed normalised", ct: "", body: seed, tr: config.Transform{Format: "json"},
			wantBody: `{"bridge":"91806828XXXX","duration":"23","end_at":"2021-04-09 16:27:55","flow_id":123,"from":"91891952XXXX",` +
				`"mid":"1234-1333-XXXXX","recording_url":"https://youraudiofilelocation/","source":"OBD","start_at":"2021-04-09 16:27:39",` +
				`"status":"ANSWER","to":"91886713XXXX"}`, wantCT: "application/json"},
		{name: "headers only keep the bytes", ct: "application/json", body: seed,
			tr:   config.Transform{Headers: map[string]string{"x-call-id": ".mid", "X-Flow": ".flow_id", "X-None": ".nope"}},
			keep: true, wantHdr: map[string]string{"X-Call-Id": "1234-1333-XXXXX", "X-Flow": "123"}},
		{name: "big integers stay exact", ct: "application/json",
			body:     []byte(`{"n": 123456789012345678901234567890, "m": -98765432109876543210, "f": 1.5, "e": 1e400,}`),
			tr:       config.Transform{Body: `{n, next: (.n + 1), m, f, e}`},
			wantBody: `{"e":"1e400","f":1.5,"m":-98765432109876543210,"n":123456789012345678901234567890,"next":123456789012345678901234567891}`},
		{name: "missing field is null", ct: "application/json", body: []byte(`{"a":1}`),
			tr: config.Transform{Body: `{x: .nope, y: .nope.deeper}`}, wantBody: `{"x":null,"y":null}`},
		{name: "null body", ct: "application/json", body: []byte(`{"a":null}`),
			tr: config.Transform{Body: `.a`}, wantBody: `null`},
		{name: "unicode", ct: "application/json", body: []byte(`{"name":"Zo\u00eb \"q\" 😀 \ud83d\ude00","raw":"é"}`),
			tr: config.Transform{Body: `{n: .name, r: .raw, len: (.name|length)}`}, wantBody: `{"len":11,"n":"Zoë \"q\" 😀 😀","r":"é"}`},
		{name: "form input", ct: "application/x-www-form-urlencoded", body: []byte("status=ANSWER&duration=23&to=%2B9188"),
			tr: config.Transform{Body: `{to, s: (.duration|tonumber)}`}, wantBody: `{"s":23,"to":"+9188"}`},
		{name: "non-JSON body", ct: "text/plain", body: []byte("call answered"),
			tr: config.Transform{Body: `.`}, wantErr: "body is not JSON or a form (content type text/plain)", wantInput: true},
		{name: "broken JSON", ct: "application/json", body: []byte(`{"a": }`),
			tr: config.Transform{Body: `.`}, wantErr: "offset 6", wantInput: true},
		{name: "jq error", ct: "application/json", body: seed,
			tr: config.Transform{Body: `.status | tonumber`}, wantErr: "transform: body: jq:"},
		{name: "several outputs", ct: "application/json", body: seed,
			tr: config.Transform{Body: `.to, .from`}, wantErr: "more than one value"},
		{name: "no output", ct: "application/json", body: seed,
			tr: config.Transform{Body: `empty`}, wantErr: "no value"},
		{name: "form of a nested object", ct: "application/json", body: seed,
			tr: config.Transform{Body: `{a: {b: 1}}`, Format: "form"}, wantErr: `field "a": value is an object`},
		{name: "form of an array", ct: "application/json", body: seed,
			tr: config.Transform{Body: `[1]`, Format: "form"}, wantErr: "needs an object, got an array"},
		{name: "header of an object", ct: "application/json", body: seed,
			tr: config.Transform{Headers: map[string]string{"X-A": "{}"}}, wantErr: "header X-A: value is an object"},
		{name: "header with a line break", ct: "application/json", body: seed,
			tr: config.Transform{Headers: map[string]string{"X-A": `"a\nb"`}}, wantErr: "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.New(tt.tr)
			if err != nil {
				t.Fatal(err)
			}
			out, err := transform.Run(context.Background(), tr, tt.ct, tt.body, roomyLimits)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, transform.ErrTransform) {
					t.Fatalf("Run = %q, %v; want an ErrTransform containing %q", out.Body, err, tt.wantErr)
				}
				var te *transform.Error
				if !errors.As(err, &te) || (te.Part == "input") != tt.wantInput {
					t.Errorf("error part = %+v, want input: %v", te, tt.wantInput)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.keep != (out.Body == nil) {
				t.Fatalf("body = %q, want the original bytes: %v", out.Body, tt.keep)
			}
			if !tt.keep && string(out.Body) != tt.wantBody {
				t.Errorf("body =\n%s\nwant\n%s", out.Body, tt.wantBody)
			}
			if tt.wantCT != "" && out.ContentType != tt.wantCT {
				t.Errorf("content type = %q, want %q", out.ContentType, tt.wantCT)
			}
			if len(out.Header) != len(tt.wantHdr) {
				t.Errorf("headers = %v, want %v", out.Header, tt.wantHdr)
			}
			for k, v := range tt.wantHdr {
				if out.Header[k] != v {
					t.Errorf("header %s = %q, want %q (all: %v)", k, out.Header[k], v, out.Header)
				}
			}
		})
	}
}

// TestLimits: an expression that never ends or grows without bound is
// stopped, as a filter and as a transform, and says why.
func TestLimits(t *testing.T) {
	seed := input(t, "application/json", seedBody(t))
	// The time cases stop at a short limit; the size cases have all the
	// time they need, so that a busy machine cannot turn them into timeouts.
	short := transform.Limits{Timeout: 50 * time.Millisecond, MaxOutputBytes: 4096}
	roomy := transform.Limits{Timeout: time.Minute, MaxOutputBytes: 4096}
	tests := []struct {
		name, expr string
		lim        transform.Limits
		wantErr    string
	}{
		{"infinite recursion", `def f: f; f`, short, "time limit"},
		{"infinite loop", `last(repeat(1))`, short, "time limit"},
		{"huge array", `[range(1e9)]`, short, "time limit"},
		{"output too large", `[range(3000)]`, roomy, "output larger than 4096 bytes"},
		{"long string", `"x" * 10000`, roomy, "output larger than 4096 bytes"},
		{"endless outputs", `range(1e9)`, roomy, "more than one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.New(config.Transform{Body: tt.expr})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tr.Apply(context.Background(), seed, tt.lim)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Apply: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("filter", func(t *testing.T) {
		for _, src := range []string{`def f: f; f`, `[range(1e9)] | length > 0`} {
			ok, err := compile(t, src).Test(context.Background(), seed, short)
			if ok || err == nil || !strings.Contains(err.Error(), "time limit") {
				t.Errorf("Test(%q) = %v, %v; want stopped at the time limit", src, ok, err)
			}
		}
	})
}

func TestCompileErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{`.status ==`, "jq: unexpected EOF at column 10"},
		{`{phone: .to`, "unexpected EOF"},
		{`.a | }`, `jq: unexpected token "}" at column 6`},
		{`nosuch(1)`, "function not defined: nosuch/1"},
		{`$ENV.HOME`, ""}, // compiles; reads an empty environment
	} {
		_, err := transform.Compile(tt.src)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Compile(%q): %v", tt.src, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Compile(%q) = %v, want %q", tt.src, err, tt.want)
		}
	}
}

// TestNoEnvironment: expressions cannot read the relay's environment,
// where secrets live.
func TestNoEnvironment(t *testing.T) {
	t.Setenv("RELAY_TEST_SECRET", "s3cret")
	tr, err := transform.New(config.Transform{Body: `[$ENV.RELAY_TEST_SECRET, env.RELAY_TEST_SECRET]`})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tr.Apply(context.Background(), map[string]any{}, roomyLimits)
	if err != nil || string(out.Body) != `[null,null]` {
		t.Fatalf("Apply = %q, %v; want [null,null]", out.Body, err)
	}
}

// roomyLimits keep DefaultLimits' output cap without a time limit that a
// busy test machine could reach.
var roomyLimits = transform.Limits{Timeout: time.Minute, MaxOutputBytes: transform.DefaultLimits().MaxOutputBytes}

// TestQuiet: a jq error quotes the value it failed on, up to 30 bytes of
// the body or, for error(v), all of v. The error keeps that text (the
// attempt record shows it beside the body); Quiet, which logs get, keeps
// what failed and where, and none of the body.
func TestQuiet(t *testing.T) {
	body := []byte(`{"phone": "91891952SECRET", "n": 918919520001, "obj": {"k": "SECRET"}, "arr": ["SECRET"], "neg": -918919520001}`)
	in := input(t, "application/json", body)
	tests := []struct {
		name, expr string
		want       string // Quiet's text, whole
	}{
		{"object expected", `.phone.x`, `transform: body: jq: expected an object but got: string …`},
		{"binary operator", `.phone + 1`, `transform: body: jq: cannot add: string …`},
		{"function of a string", `.phone | tonumber`, `transform: body: jq: tonumber cannot be applied to …`},
		{"function of an object", `.obj | tonumber`, `transform: body: jq: tonumber cannot be applied to: object …`},
		// The argument comes from the expression, but Quiet cannot tell.
		{"function with an argument", `.obj | ltrimstr("x")`, `transform: body: jq: ltrimstr …`},
		{"iterate a number", `.n[]`, `transform: body: jq: cannot iterate over: number …`},
		{"negative number", `.neg | ascii_downcase`, `transform: body: jq: ascii_downcase cannot be applied to: number …`},
		{"array", `.arr | tonumber`, `transform: body: jq: tonumber cannot be applied to: array …`},
		{"error of a string", `error(.phone)`, `transform: body: jq: error …`},
		{"error of an object", `error(.obj)`, `transform: body: jq: error …`},
		{"halt_error", `.obj | halt_error`, `transform: body: jq: halt error …`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := transform.New(config.Transform{Body: tt.expr})
			if err != nil {
				t.Fatal(err)
			}
			_, err = tr.Apply(context.Background(), in, roomyLimits)
			if err == nil {
				t.Fatal("Apply succeeded, want a jq error")
			}
			if !strings.Contains(err.Error(), "SECRET") && !strings.Contains(err.Error(), "918919520001") {
				t.Errorf("error %q quotes nothing of the body: the case tests nothing", err)
			}
			if got := transform.Quiet(err); got != tt.want {
				t.Errorf("Quiet = %q, want %q (error: %q)", got, tt.want, err)
			}
		})
	}
	t.Run("filter", func(t *testing.T) {
		_, err := compile(t, `.phone.x == 1`).Test(context.Background(), in, roomyLimits)
		if got, want := transform.Quiet(err), `transform: filter: jq: expected an object but got: string …`; got != want {
			t.Errorf("Quiet = %q, want %q (error: %q)", got, want, err)
		}
	})
	t.Run("not a jq error", func(t *testing.T) {
		short := transform.Limits{Timeout: 20 * time.Millisecond, MaxOutputBytes: 4096}
		_, err := compile(t, `def f: f; f`).Test(context.Background(), in, short)
		if got := transform.Quiet(err); err == nil || got != err.Error() {
			t.Errorf("Quiet(%v) = %q, want the error's own text", err, got)
		}
		plain := errors.New("route: filter did not compile")
		if got := transform.Quiet(plain); got != plain.Error() {
			t.Errorf("Quiet(%v) = %q", plain, got)
		}
	})
}
