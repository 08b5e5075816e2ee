package ingest

import (
	"bytes"
	"errors"
	"math/big"
	"strconv"
)

// ErrNotReadable reports a body that is neither JSON nor a form, so it has no
// value for a jq filter or transformation to read.
var ErrNotReadable = errors.New("ingest: body is neither JSON nor a form")

// DecodeJSON reads a whole JSON body by ExtractJSON's tolerant rules and
// returns it as the values jq works on: objects as map[string]any, arrays as
// []any, strings, bools, nil, and numbers as int when they fit, *big.Int when
// an integer does not (kept exact), float64 otherwise. A bare token that is
// not a JSON number (91806828XXXX, 0123, +5) becomes the string written.
// Errors are ExtractJSON's, at the same offsets.
func DecodeJSON(body []byte) (map[string]any, error) {
	s := scanner{b: body}
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
	v, err := s.anyObject(1)
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if !s.eof() {
		return nil, s.errorf("unexpected %s after the top-level object", s.found())
	}
	return v, nil
}

// Value returns a body of the given kind as a jq input: DecodeJSON for JSON,
// an object of each key's first value (strings) for a form, and
// ErrNotReadable for anything else.
func Value(kind BodyKind, body []byte) (any, error) {
	switch kind {
	case KindJSON:
		m, err := DecodeJSON(body)
		if err != nil {
			return nil, err
		}
		return m, nil
	case KindForm:
		f, err := ExtractForm(body)
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(f))
		for k, v := range f {
			m[k] = v
		}
		return m, nil
	}
	return nil, ErrNotReadable
}

// anyObject reads the object whose '{' is at the cursor, at depth.
func (s *scanner) anyObject(depth int) (map[string]any, error) {
	open := s.i
	s.i++
	m := map[string]any{}
	for more := false; ; more = true {
		key, done, err := s.nextKey(open, more)
		if err != nil {
			return nil, err
		}
		if done {
			return m, nil
		}
		k := string(key) // kbuf is reused by nested keys
		v, err := s.anyValue(depth)
		if err != nil {
			return nil, err
		}
		if _, seen := m[k]; !seen { // the first occurrence wins, as in ExtractJSON
			m[k] = v
		}
	}
}

// anyArray reads the array whose '[' is at the cursor, at depth.
func (s *scanner) anyArray(depth int) ([]any, error) {
	open := s.i
	s.i++
	a := []any{}
	for {
		s.skipSpace()
		if s.eof() {
			return nil, s.errorAt(open, "unterminated array")
		}
		if s.b[s.i] == ']' {
			s.i++
			return a, nil
		}
		v, err := s.anyValue(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		s.skipSpace()
		if s.eof() {
			return nil, s.errorAt(open, "unterminated array")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return a, nil
		default:
			return nil, s.errorf("expected ',' or ']' in array, found %s", s.found())
		}
	}
}

// anyValue reads the value at the cursor inside a container at depth.
func (s *scanner) anyValue(depth int) (any, error) {
	if s.eof() {
		return nil, s.errorf("expected a value, found end of body")
	}
	switch c := s.b[s.i]; c {
	case '"':
		b, err := s.str(&s.vbuf)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case '{', '[':
		if depth >= MaxDepth {
			return nil, s.errorf("nesting deeper than %d levels", MaxDepth)
		}
		if c == '{' {
			return s.anyObject(depth + 1)
		}
		return s.anyArray(depth + 1)
	}
	tok, err := s.bare()
	if err != nil {
		return nil, err
	}
	return bareValue(tok), nil
}

// bareValue converts an unquoted token that bare accepted.
func bareValue(tok []byte) any {
	switch string(tok) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	ok, integer := jsonNumber(tok)
	switch {
	case !ok:
		return string(tok)
	case integer:
		if n, err := strconv.Atoi(string(tok)); err == nil {
			return n
		}
		if n, ok := new(big.Int).SetString(string(tok), 10); ok {
			return n
		}
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil { // out of float64's range: keep the text rather than lose it
		return string(tok)
	}
	return f
}

// jsonNumber reports whether tok is a number by JSON's grammar, and whether
// it is an integer (no fraction or exponent).
func jsonNumber(tok []byte) (ok, integer bool) {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	switch {
	case i >= len(tok) || !isDigit(tok[i]):
		return false, false
	case tok[i] == '0':
		i++
	default:
		for i < len(tok) && isDigit(tok[i]) {
			i++
		}
	}
	integer = true
	if i < len(tok) && tok[i] == '.' {
		integer = false
		i++
		start := i
		for i < len(tok) && isDigit(tok[i]) {
			i++
		}
		if i == start {
			return false, false
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		integer = false
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		start := i
		for i < len(tok) && isDigit(tok[i]) {
			i++
		}
		if i == start {
			return false, false
		}
	}
	return i == len(tok), integer
}
