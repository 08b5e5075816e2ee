package transform

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/relaygw/relay/internal/jsonenc"
)

// errTooLarge is returned once an encoding passes its budget.
type errTooLarge int

func (e errTooLarge) Error() string { return fmt.Sprintf("output larger than %d bytes", int(e)) }

// appendJSON appends v, a value jq produced, as JSON: object keys sorted,
// integers exact (*big.Int included), NaN as null and infinities as the
// largest float64, as jq writes them. It stops with an error once the
// encoding passes budget bytes, so a huge result is not encoded whole.
func appendJSON(b []byte, v any, budget int) ([]byte, error) {
	e := encoder{limit: len(b) + budget}
	b = e.append(b, v)
	if e.err != nil {
		return nil, e.err
	}
	return b, nil
}

type encoder struct {
	limit int
	err   error
}

func (e *encoder) append(b []byte, v any) []byte {
	if e.err != nil {
		return b
	}
	if len(b) > e.limit {
		e.err = errTooLarge(e.limit)
		return b
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case float64:
		return appendFloat(b, v)
	case *big.Int:
		return v.Append(b, 10)
	case string:
		b = jsonenc.AppendString(b, v)
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			if b = e.append(b, x); e.err != nil {
				return b
			}
		}
		b = append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
			b = append(b, ':')
			if b = e.append(b, v[k]); e.err != nil {
				return b
			}
		}
		b = append(b, '}')
	default:
		e.err = errors.New("jq produced a value of an unexpected type " + fmt.Sprintf("%T", v))
		return b
	}
	if len(b) > e.limit {
		e.err = errTooLarge(e.limit)
	}
	return b
}

// appendFloat writes f as encoding/json does, with jq's NaN and infinities.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "null"...)
	case math.IsInf(f, 1):
		f = math.MaxFloat64
	case math.IsInf(f, -1):
		f = -math.MaxFloat64
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e17 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
