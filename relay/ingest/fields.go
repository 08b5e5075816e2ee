package ingest

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Fields holds the top-level scalar fields of a callback body, each value as
// text exactly as written: numbers verbatim (e.g. "91806828123456789012345",
// never converted to float64), strings unescaped, and true, false and null as
// those words. Nested objects and arrays are not included.
type Fields map[string]string

// MaxDepth is how deeply objects and arrays may nest in a JSON body; the
// top-level object is depth 1. It bounds the scanner's recursion.
const MaxDepth = 64

// SyntaxError reports why a JSON body could not be read, and where.
type SyntaxError struct {
	// Offset is the byte offset in the body (counting a leading BOM) at which
	// the problem was found.
	Offset int
	// Msg says what was wrong.
	Msg string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("ingest: json body: offset %d: %s", e.Offset, e.Msg)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ExtractJSON reads the top-level object of a JSON body tolerantly and returns
// its scalar fields. It exists because providers send what encoding/json
// rejects; on top of standard JSON it accepts:
//
//   - a trailing comma before '}' or ']' (the provider's documented example has one);
//   - a leading UTF-8 byte order mark;
//   - numbers of any length, kept as the text written;
//   - bare number-like tokens: an unquoted run of letters, digits, '.', '+'
//     and '-' that starts with a digit, or with '+' or '-' and a digit, is a
//     scalar kept verbatim. The provider's example sends masked numbers such
//     as 91806828XXXX this way;
//   - raw control characters and invalid UTF-8 inside strings, passed through
//     as they are.
//
// It rejects, with a *SyntaxError carrying the byte offset: a body that is
// not a single object (only whitespace may follow it), unterminated strings,
// objects and arrays, a missing colon or comma, unknown escapes, bare words
// other than true, false and null, and nesting deeper than MaxDepth.
//
// Lone or mismatched \u surrogates become U+FFFD, as in encoding/json. When a
// key appears more than once the first occurrence wins, whatever its value
// (so a key whose first value is an object stays absent). The body is only
// read; ExtractJSON never retains it.
func ExtractJSON(body []byte) (Fields, error) {
	return extractJSON(body, false, nil)
}

// extractJSON is ExtractJSON; with only, the Fields hold just the keys in
// keep, with the values ExtractJSON gives them (the whole body is still read
// and checked, so errors are the same).
func extractJSON(body []byte, only bool, keep []string) (Fields, error) {
	s := scanner{b: body, only: only, keep: keep}
	if bytes.HasPrefix(body, utf8BOM) {
		s.i = len(utf8BOM)
	}
	s.skipSpace()
	if s.eof() {
		return nil, s.errorf("empty body, want a JSON object")
	}
	if s.b[s.i] != '{' {
		return nil, s.errorf("top-level value must be an object, found %s", s.found())
	}
	f, err := s.topObject()
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if !s.eof() {
		return nil, s.errorf("unexpected %s after the top-level object", s.found())
	}
	return f, nil
}

// scanner is a cursor over a JSON body. Strings without escapes are returned
// as views into b; escaped ones are decoded into the scratch buffers.
type scanner struct {
	b    []byte
	i    int
	kbuf []byte   // decoded keys
	vbuf []byte   // decoded values
	only bool     // keep only the keys in keep
	keep []string // see extractJSON
}

// member locates a top-level member's key and value in the text gathered by
// topObject.
type member struct {
	key, val, end int // key is text[key:val], value is text[val:end]
	scalar        bool
}

func (s *scanner) eof() bool { return s.i >= len(s.b) }

func (s *scanner) errorf(format string, args ...any) error {
	return s.errorAt(s.i, format, args...)
}

func (s *scanner) errorAt(off int, format string, args ...any) error {
	return &SyntaxError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// found describes the byte at the cursor for an error message.
func (s *scanner) found() string {
	if s.eof() {
		return "end of body"
	}
	c := s.b[s.i]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// topObject reads the top-level object whose '{' is at the cursor. Keys and
// values are copied into text, which becomes one string whose substrings are
// the Fields: a typical body costs two allocations (that string and the map)
// instead of two per field. text and members are locals backed by arrays so
// that, for typical bodies, they stay on the stack.
func (s *scanner) topObject() (Fields, error) {
	var textBuf [512]byte
	var memberBuf [24]member
	text, members := textBuf[:0], memberBuf[:0]
	open := s.i
	s.i++
	for more := false; ; more = true {
		key, done, err := s.nextKey(open, more)
		if err != nil {
			return nil, err
		}
		if done {
			if s.only {
				return keptFields(text, members, s.keep), nil
			}
			return fields(text, members), nil
		}
		// Copy the key now: skipping a nested value reuses kbuf.
		m := member{key: len(text)}
		text = append(text, key...)
		m.val = len(text)
		val, scalar, err := s.value(1, &s.vbuf)
		if err != nil {
			return nil, err
		}
		text = append(text, val...)
		m.end, m.scalar = len(text), scalar
		members = append(members, m)
	}
}

// object skips the nested object whose '{' is at the cursor, checking its
// syntax.
func (s *scanner) object(depth int) error {
	open := s.i
	s.i++
	for more := false; ; more = true {
		_, done, err := s.nextKey(open, more)
		if err != nil || done {
			return err
		}
		if _, _, err := s.value(depth, &s.vbuf); err != nil {
			return err
		}
	}
}

// nextKey advances through the object opened at offset open to its next key
// and past the colon after it, or past the closing '}' (done). more says
// whether a member precedes, which must then be followed by ',' or '}'.
func (s *scanner) nextKey(open int, more bool) (key []byte, done bool, err error) {
	s.skipSpace()
	if more {
		if s.eof() {
			return nil, false, s.errorAt(open, "unterminated object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.skipSpace()
		case '}':
			s.i++
			return nil, true, nil
		default:
			return nil, false, s.errorf("expected ',' or '}' after a value in object, found %s", s.found())
		}
	}
	if s.eof() {
		return nil, false, s.errorAt(open, "unterminated object")
	}
	// Here we are after '{' or after a comma, so '}' closes an empty object
	// or follows a trailing comma.
	if s.b[s.i] == '}' {
		s.i++
		return nil, true, nil
	}
	if s.b[s.i] != '"' {
		return nil, false, s.errorf("expected a string key or '}', found %s", s.found())
	}
	if key, err = s.str(&s.kbuf); err != nil {
		return nil, false, err
	}
	s.skipSpace()
	if s.eof() || s.b[s.i] != ':' {
		return nil, false, s.errorf("missing ':' after key %.40q, found %s", key, s.found())
	}
	s.i++
	s.skipSpace()
	return key, false, nil
}

// keptFields is fields for the keys in keep only, by the same rules: the
// first occurrence of a key wins, and a key whose first value is an object
// or array is absent.
func keptFields(gathered []byte, members []member, keep []string) Fields {
	f := make(Fields, len(keep))
	for _, name := range keep {
		for _, m := range members {
			if string(gathered[m.key:m.val]) != name {
				continue
			}
			if m.scalar {
				f[name] = string(gathered[m.val:m.end])
			}
			break
		}
	}
	return f
}

// fields builds the Fields from the gathered members. The first occurrence
// of a key wins, even when its value is an object or array and so is not
// stored; such keys are rare, hence the lazily made set.
func fields(gathered []byte, members []member) Fields {
	text := string(gathered)
	f := make(Fields, len(members))
	var nested map[string]struct{}
	for _, m := range members {
		k := text[m.key:m.val]
		if _, seen := f[k]; seen {
			continue
		}
		if _, seen := nested[k]; seen {
			continue
		}
		if !m.scalar {
			if nested == nil {
				nested = make(map[string]struct{})
			}
			nested[k] = struct{}{}
			continue
		}
		f[k] = text[m.val:m.end]
	}
	return f
}

// array skips the array whose '[' is at the cursor, checking its syntax.
func (s *scanner) array(depth int) error {
	open := s.i
	s.i++
	for {
		s.skipSpace()
		if s.eof() {
			return s.errorAt(open, "unterminated array")
		}
		if s.b[s.i] == ']' { // empty array or trailing comma
			s.i++
			return nil
		}
		if _, _, err := s.value(depth, &s.vbuf); err != nil {
			return err
		}
		s.skipSpace()
		if s.eof() {
			return s.errorAt(open, "unterminated array")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("expected ',' or ']' in array, found %s", s.found())
		}
	}
}

// value reads the value at the cursor inside a container at depth. For a
// scalar it returns its text and scalar=true; objects and arrays are checked
// and skipped.
func (s *scanner) value(depth int, buf *[]byte) (text []byte, scalar bool, err error) {
	if s.eof() {
		return nil, false, s.errorf("expected a value, found end of body")
	}
	switch c := s.b[s.i]; c {
	case '"':
		text, err = s.str(buf)
		return text, err == nil, err
	case '{', '[':
		if depth >= MaxDepth {
			return nil, false, s.errorf("nesting deeper than %d levels", MaxDepth)
		}
		if c == '{' {
			return nil, false, s.object(depth + 1)
		}
		return nil, false, s.array(depth + 1)
	}
	text, err = s.bare()
	return text, err == nil, err
}

// bare reads an unquoted scalar: true, false, null, or a number-like token.
func (s *scanner) bare() ([]byte, error) {
	start := s.i
	for s.i < len(s.b) && isBareByte(s.b[s.i]) {
		s.i++
	}
	tok := s.b[start:s.i]
	switch {
	case len(tok) == 0:
		return nil, s.errorf("expected a value, found %s", s.found())
	case isDigit(tok[0]), len(tok) > 1 && (tok[0] == '-' || tok[0] == '+') && isDigit(tok[1]):
		return tok, nil
	case string(tok) == "true", string(tok) == "false", string(tok) == "null":
		return tok, nil
	}
	return nil, s.errorAt(start, "invalid bare word %.40q: only true, false, null and numbers may be unquoted", tok)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isBareByte(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '+' || c == '-'
}

// str reads the string whose opening quote is at the cursor and returns its
// decoded bytes: a view into the body when it has no escapes, else the
// contents of *buf, which it reuses.
func (s *scanner) str(buf *[]byte) ([]byte, error) {
	open := s.i
	rest := s.b[open+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, s.errorAt(open, "unterminated string")
	}
	esc := bytes.IndexByte(rest[:end], '\\')
	if esc < 0 {
		s.i = open + 1 + end + 1
		return rest[:end], nil
	}
	out := append((*buf)[:0], rest[:esc]...)
	s.i = open + 1 + esc
	for {
		if s.eof() {
			*buf = out
			return nil, s.errorAt(open, "unterminated string")
		}
		c := s.b[s.i]
		switch c {
		case '"':
			s.i++
			*buf = out
			return out, nil
		case '\\':
			var err error
			if out, err = s.escape(out); err != nil {
				*buf = out
				return nil, err
			}
		default:
			out = append(out, c)
			s.i++
		}
	}
}

// escape decodes the escape sequence whose backslash is at the cursor and
// appends it to out.
func (s *scanner) escape(out []byte) ([]byte, error) {
	at := s.i
	if at+1 >= len(s.b) {
		return out, s.errorAt(at, "unterminated escape")
	}
	c := s.b[at+1]
	s.i = at + 2
	switch c {
	case '"', '\\', '/':
		return append(out, c), nil
	case 'b':
		return append(out, '\b'), nil
	case 'f':
		return append(out, '\f'), nil
	case 'n':
		return append(out, '\n'), nil
	case 'r':
		return append(out, '\r'), nil
	case 't':
		return append(out, '\t'), nil
	case 'u':
		r, ok := hex4(s.b[at+2:])
		if !ok {
			return out, s.errorAt(at, "invalid \\u escape, want 4 hex digits")
		}
		s.i = at + 6
		if utf16.IsSurrogate(r) {
			// A valid pair is consumed whole; anything else leaves the next
			// escape to be read on its own, as encoding/json does.
			if len(s.b) >= s.i+6 && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				if r2, ok := hex4(s.b[s.i+2:]); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						s.i += 6
						return utf8.AppendRune(out, dec), nil
					}
				}
			}
			r = utf8.RuneError
		}
		return utf8.AppendRune(out, r), nil
	}
	return out, s.errorAt(at, "invalid escape \\%c in string", rune(c))
}

// hex4 decodes four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Extract reads the fields of a body of the given kind: ExtractJSON for
// KindJSON, ExtractForm for KindForm, none for KindOther.
func Extract(kind BodyKind, body []byte) (Fields, error) {
	switch kind {
	case KindJSON:
		return ExtractJSON(body)
	case KindForm:
		return ExtractForm(body)
	}
	return nil, nil
}

// extractOnly is Extract for a caller that reads only the keys in keep: a
// JSON body's Fields then hold just those (what Extract gives them, with the
// same errors), which spares building a map of every field. Other kinds get
// all their fields.
func extractOnly(kind BodyKind, body []byte, keep []string) (Fields, error) {
	if kind == KindJSON {
		return extractJSON(body, true, keep)
	}
	return Extract(kind, body)
}

// ExtractForm reads an application/x-www-form-urlencoded body and returns the
// first value of each key. Pairs are separated by '&' only (a ';' is part of
// the value, as in Go's net/url since 1.17); '+' decodes to a space; a key
// without '=' has the empty value; empty pairs are skipped. A malformed
// percent escape is an error naming the pair's byte offset.
func ExtractForm(body []byte) (Fields, error) {
	f := make(Fields, 16)
	for off := 0; off < len(body); {
		pair := body[off:]
		next := len(body)
		if amp := bytes.IndexByte(pair, '&'); amp >= 0 {
			pair = pair[:amp]
			next = off + amp + 1
		}
		if len(pair) > 0 {
			k, v, _ := bytes.Cut(pair, []byte{'='})
			key, err := url.QueryUnescape(string(k))
			if err != nil {
				return nil, fmt.Errorf("ingest: form body: offset %d: key: %w", off, err)
			}
			val, err := url.QueryUnescape(string(v))
			if err != nil {
				return nil, fmt.Errorf("ingest: form body: offset %d: value of %.40q: %w", off, key, err)
			}
			if _, seen := f[key]; !seen {
				f[key] = val
			}
		}
		off = next
	}
	return f, nil
}

// BodyKind is how a body can be read for fields.
type BodyKind int

// Body kinds.
const (
	// KindOther is a body that is not read for fields; only the path and
	// query can route it.
	KindOther BodyKind = iota
	// KindJSON is read with ExtractJSON.
	KindJSON
	// KindForm is read with ExtractForm.
	KindForm
)

// String returns the kind's name.
func (k BodyKind) String() string {
	switch k {
	case KindJSON:
		return "json"
	case KindForm:
		return "form"
	}
	return "other"
}

// Kind classifies a body by its Content-Type. application/json, text/json and
// any type with a +json suffix are JSON; application/x-www-form-urlencoded is
// a form. A missing or generic type (text/plain, application/octet-stream) is
// JSON when the first byte after any BOM and whitespace is '{', else other.
// A form type whose body starts that way is JSON too: clients that post a JSON
// string (PHP's curl, for one) label it as a form by default, and no real form
// body begins with '{'. Parameters such as charset are ignored.
func Kind(contentType string, body []byte) BodyKind {
	mt := mediaType(contentType)
	switch {
	case strings.EqualFold(mt, "application/json"), strings.EqualFold(mt, "text/json"), hasSuffixFold(mt, "+json"):
		return KindJSON
	case strings.EqualFold(mt, "application/x-www-form-urlencoded"):
		if looksLikeObject(body) {
			return KindJSON
		}
		return KindForm
	case mt == "", strings.EqualFold(mt, "text/plain"), strings.EqualFold(mt, "application/octet-stream"):
		if looksLikeObject(body) {
			return KindJSON
		}
	}
	return KindOther
}

// mediaType returns the type/subtype of a Content-Type without parameters or
// surrounding space. Hand-rolled because mime.ParseMediaType allocates a map
// on every request.
func mediaType(ct string) string {
	for i := 0; i < len(ct); i++ {
		if ct[i] == ';' {
			ct = ct[:i]
			break
		}
	}
	start, end := 0, len(ct)
	for start < end && (ct[start] == ' ' || ct[start] == '\t') {
		start++
	}
	for end > start && (ct[end-1] == ' ' || ct[end-1] == '\t') {
		end--
	}
	return ct[start:end]
}

func looksLikeObject(body []byte) bool {
	body = bytes.TrimPrefix(body, utf8BOM)
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
