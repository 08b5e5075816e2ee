package transform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/relaygw/relay/config"
	"github.com/relaygw/relay/relay/ingest"
)

// Limits bound one run of a filter or one transformation.
type Limits struct {
	// Timeout bounds the run; a filter that loops forever is stopped here.
	Timeout time.Duration
	// MaxOutputBytes bounds the encoded body and headers of a transformation.
	MaxOutputBytes int
}

// DefaultLimits are the limits Relay runs expressions with.
func DefaultLimits() Limits {
	return Limits{Timeout: config.DefaultJQTimeout, MaxOutputBytes: config.DefaultJQMaxOutputBytes}
}

// ErrTransform marks every error of Apply and Test, so a caller can tell a
// jq failure from others with errors.Is.
var ErrTransform = errors.New("transform")

// Error is a failed filter or transformation: which part failed and why.
type Error struct {
	// Part is "input", "filter", "body" or "header NAME".
	Part string
	Err  error
}

// Error implements error.
func (e *Error) Error() string { return "transform: " + e.Part + ": " + e.Err.Error() }

// Unwrap lets errors.Is find ErrTransform and the cause.
func (e *Error) Unwrap() []error { return []error{ErrTransform, e.Err} }

// Expr is a compiled jq expression, safe for concurrent use.
type Expr struct {
	src  string
	code *gojq.Code
}

// Compile parses and compiles a jq expression. Parse errors say at which
// column of src they are.
func Compile(src string) (*Expr, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("jq: %s at column %d", pe.Error(), column(src, pe.Offset))
		}
		return nil, fmt.Errorf("jq: %w", err)
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, fmt.Errorf("jq: %w", err)
	}
	return &Expr{src: src, code: code}, nil
}

// column turns gojq's offset (bytes read when the error was found) into a
// 1-based column of the token that caused it.
func column(src string, off int) int {
	off = min(max(off, 0), len(src))
	return max(len([]rune(src[:off])), 1)
}

// String returns the expression's source.
func (e *Expr) String() string { return e.src }

// first returns e's first output on input; none reports that there was no
// output. A panic inside gojq becomes an error.
func (e *Expr) first(ctx context.Context, input any) (v any, none bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, none, err = nil, false, &jqError{fmt.Errorf("internal error: %v", r)}
		}
	}()
	it := e.code.RunWithContext(ctx, input)
	out, ok := it.Next()
	if !ok {
		return nil, true, nil
	}
	if err, isErr := out.(error); isErr {
		return nil, false, runError(ctx, err)
	}
	return out, false, nil
}

// runError words an error that a run yielded.
func runError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok {
			return fmt.Errorf("jq: stopped after the %s time limit", d)
		}
		return fmt.Errorf("jq: stopped: %w", context.Cause(ctx))
	}
	var halt *gojq.HaltError
	if errors.As(err, &halt) && halt.Value() == nil {
		return errors.New("jq: halt")
	}
	return &jqError{err}
}

// jqError is an error gojq gave while running an expression. Its text
// quotes what the expression failed on: up to 30 bytes of a value from the
// input (`expected an object but got: string ("91891952…")`), or the whole
// value given to error(v). The attempt record, read through the admin API
// beside the body itself, keeps that text; logs get Quiet's.
type jqError struct{ err error }

func (e *jqError) Error() string { return "jq: " + e.err.Error() }
func (e *jqError) Unwrap() error { return e.err }

// quiet is e's text cut where it first quotes a value: gojq writes a value
// as JSON (a string in quotes, an object, an array, a number), often in
// parentheses after its type, so the first quote, bracket, parenthesis or
// number that starts a word ends what can be said without the input. The
// text of error(v) and halt_error(v) is v itself, so all of it goes.
func (e *jqError) quiet() string {
	msg := e.err.Error()
	var ve gojq.ValueError
	if errors.As(e.err, &ve) {
		msg, _, _ = strings.Cut(msg, ":")
		return "jq: " + msg + " …"
	}
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		word := i == 0 || strings.IndexByte(" (:", msg[i-1]) >= 0
		if strings.IndexByte(`"({[`, c) >= 0 || word && (c == '-' || c >= '0' && c <= '9') {
			return "jq: " + strings.TrimRight(msg[:i], " ") + " …"
		}
	}
	return "jq: " + msg
}

// Quiet returns err's text for a log line: as Error gives it, but where
// err holds a jq error, with what that error quoted from the expression's
// input left out (jqError). Callbacks carry what providers send about
// people, phone numbers in the seed callback, and logs go further than the
// admin API.
func Quiet(err error) string { return QuietIn(err.Error(), err) }

// QuietIn is Quiet for a text made from err's (an attempt record's error,
// say): the jq error's text in it is replaced by its quiet form. A text
// that holds only part of it (cut short) gives way to Quiet(err). A text
// whose err holds no jq error is returned as it is.
func QuietIn(text string, err error) string {
	var je *jqError
	if !errors.As(err, &je) {
		return text
	}
	for _, t := range []string{text, err.Error()} {
		if strings.Contains(t, je.Error()) {
			return strings.Replace(t, je.Error(), je.quiet(), 1)
		}
	}
	return je.quiet()
}

type timeoutKey struct{}

// limit returns ctx bounded by lim.Timeout.
func limit(ctx context.Context, lim Limits) (context.Context, context.CancelFunc) {
	if lim.Timeout <= 0 {
		return context.WithCancel(ctx)
	}
	ctx = context.WithValue(ctx, timeoutKey{}, lim.Timeout)
	return context.WithTimeout(ctx, lim.Timeout)
}

// Test runs e as a filter: it reports whether the first output is the
// boolean true. No output, any other value, or an error is false; the error
// is returned so callers can report it.
func (e *Expr) Test(ctx context.Context, input any, lim Limits) (bool, error) {
	ctx, cancel := limit(ctx, lim)
	defer cancel()
	v, _, err := e.first(ctx, input)
	if err != nil {
		return false, &Error{Part: "filter", Err: err}
	}
	return v == true, nil
}

// Input reads a stored body as a jq input: JSON and forms by ingest's
// tolerant rules; any other body is an error saying so.
func Input(contentType string, body []byte) (any, error) {
	kind := ingest.Kind(contentType, body)
	v, err := ingest.Value(kind, body)
	if err != nil {
		if kind == ingest.KindOther {
			ct := contentType
			if ct == "" {
				ct = "none"
			}
			err = fmt.Errorf("body is not JSON or a form (content type %s), so jq cannot read it", ct)
		}
		return nil, &Error{Part: "input", Err: err}
	}
	return v, nil
}

// Formats of a transformed body.
const (
	FormatJSON = "json"
	FormatForm = "form"
)

// Transform is a destination's transform, compiled.
type Transform struct {
	body        *Expr // nil: the original bytes
	format      string
	contentType string
	headers     []header
}

type header struct {
	name string // canonical
	expr *Expr
}

// New compiles a destination's transform. A transform without body and
// format keeps the original bytes and content type (it may still add
// headers); with format and no body the whole input is encoded.
func New(c config.Transform) (*Transform, error) {
	t := &Transform{format: c.Format, contentType: c.ContentType}
	if c.Body == "" && c.Format != "" {
		c.Body = "."
	}
	switch t.format {
	case "", FormatJSON, FormatForm:
	default:
		return nil, fmt.Errorf("format %q: want %q or %q", c.Format, FormatJSON, FormatForm)
	}
	if c.Body != "" {
		e, err := Compile(c.Body)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		t.body = e
		if t.format == "" {
			t.format = FormatJSON
		}
	}
	if t.contentType == "" && t.body != nil {
		t.contentType = "application/json"
		if t.format == FormatForm {
			t.contentType = "application/x-www-form-urlencoded"
		}
	}
	for _, name := range sortedKeys(c.Headers) {
		e, err := Compile(c.Headers[name])
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		t.headers = append(t.headers, header{name: http.CanonicalHeaderKey(name), expr: e})
	}
	return t, nil
}

// Output is what a transformation produced for one delivery.
type Output struct {
	// Body is the body to send; nil when the original bytes are sent.
	Body []byte
	// ContentType replaces the original Content-Type when not "".
	ContentType string
	// Header holds the headers computed by jq, canonical names.
	Header map[string]string
}

// Sent returns what goes out for an event with body and contentType: the
// transform's body and Content-Type where it set them, else the event's.
func (o Output) Sent(body []byte, contentType string) ([]byte, string) {
	if o.Body != nil {
		body = o.Body
	}
	if o.ContentType != "" {
		contentType = o.ContentType
	}
	return body, contentType
}

// Apply runs the transformation on input (from Input). Any failure is an
// *Error: an expression error, no output or more than one for the body,
// the time limit, an output over the size limit, or a result the format
// cannot encode.
func (t *Transform) Apply(ctx context.Context, input any, lim Limits) (Output, error) {
	ctx, cancel := limit(ctx, lim)
	defer cancel()
	out := Output{ContentType: t.contentType}
	budget := lim.MaxOutputBytes
	if budget <= 0 {
		budget = int(^uint(0) >> 1)
	}
	if t.body != nil {
		v, err := t.only(ctx, t.body, input)
		if err != nil {
			return Output{}, &Error{Part: "body", Err: err}
		}
		if t.format == FormatForm {
			out.Body, err = encodeForm(v, budget)
		} else {
			out.Body, err = appendJSON(nil, v, budget)
		}
		if err != nil {
			return Output{}, &Error{Part: "body", Err: err}
		}
		budget -= len(out.Body)
	}
	for _, h := range t.headers {
		v, none, err := h.expr.first(ctx, input)
		if err != nil {
			return Output{}, &Error{Part: "header " + h.name, Err: err}
		}
		if none || v == nil {
			continue // no value: the header is left out
		}
		s, err := headerValue(v, budget)
		if err != nil {
			return Output{}, &Error{Part: "header " + h.name, Err: err}
		}
		budget -= len(s)
		if out.Header == nil {
			out.Header = make(map[string]string, len(t.headers))
		}
		out.Header[h.name] = s
	}
	return out, nil
}

// only returns e's single output: a body is one value, so none or several
// are errors rather than a guess.
func (t *Transform) only(ctx context.Context, e *Expr, input any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &jqError{fmt.Errorf("internal error: %v", r)}
		}
	}()
	it := e.code.RunWithContext(ctx, input)
	first, ok := it.Next()
	if !ok {
		return nil, errors.New("jq: the expression yielded no value")
	}
	if err, isErr := first.(error); isErr {
		return nil, runError(ctx, err)
	}
	if second, more := it.Next(); more {
		if err, isErr := second.(error); isErr {
			return nil, runError(ctx, err)
		}
		return nil, errors.New("jq: the expression yielded more than one value; wrap it in [...] to send an array")
	}
	return first, nil
}

// headerValue is a header's text: a string as it is, a number or boolean as
// JSON writes it. It must fit in a header line.
func headerValue(v any, budget int) (string, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case map[string]any, []any:
		return "", fmt.Errorf("value is %s; want a string, number or boolean", typeName(v))
	default:
		b, err := appendJSON(nil, v, budget)
		if err != nil {
			return "", err
		}
		s = string(b)
	}
	if len(s) > budget {
		return "", fmt.Errorf("output larger than %d bytes", budget)
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", errors.New("value contains a line break or NUL")
	}
	return s, nil
}

// encodeForm encodes an object as application/x-www-form-urlencoded, keys
// sorted: scalar values as text (null as empty), an array of scalars as the
// key repeated.
func encodeForm(v any, budget int) ([]byte, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("format form needs an object, got %s", typeName(v))
	}
	vals := make(url.Values, len(m))
	for k, x := range m {
		items, isArr := x.([]any)
		if !isArr {
			items = []any{x}
		}
		for _, it := range items {
			s, err := formText(it, budget)
			if err != nil {
				return nil, fmt.Errorf("format form: field %q: %w", k, err)
			}
			vals[k] = append(vals[k], s)
		}
	}
	enc := vals.Encode()
	if len(enc) > budget {
		return nil, fmt.Errorf("output larger than %d bytes", budget)
	}
	return []byte(enc), nil
}

func formText(v any, budget int) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case map[string]any, []any:
		return "", fmt.Errorf("value is %s; form fields hold strings, numbers and booleans", typeName(v))
	}
	b, err := appendJSON(nil, v, budget)
	return string(b), err
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "a number"
}

// Run reads a stored body (Input) and applies t to it.
func Run(ctx context.Context, t *Transform, contentType string, body []byte, lim Limits) (Output, error) {
	in, err := Input(contentType, body)
	if err != nil {
		return Output{}, err
	}
	return t.Apply(ctx, in, lim)
}
