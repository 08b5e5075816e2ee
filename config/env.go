package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// envName is what may stand between ${ and } (or :-).
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// lineMap maps a line of the expanded text to the line of the original file.
// They differ only when a variable's value holds a newline.
type lineMap []int

// orig returns the original line of expanded line n (1-based).
func (m lineMap) orig(n int) int {
	if n < 1 || n > len(m) {
		return n
	}
	return m[n-1]
}

// expandEnv replaces ${VAR} and ${VAR:-default} in data with values from
// lookup, and $$ with a literal $. An unset ${VAR} becomes "", and
// ${VAR:-default} uses default when VAR is unset or empty (as in POSIX sh).
// A $ followed by anything else is kept as is, so "$5" needs no escaping.
// The default runs to the first "}", so defaults cannot nest.
//
// The expansion is textual, before YAML parsing: a value holding a quote or a
// newline changes the YAML around it. Line numbers in messages are mapped back
// to the original file through the returned lineMap.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, lineMap, []Error) {
	out, lines, errs, _ := expandEnvRefs(data, lookup)
	return out, lines, errs
}

// envRef is one ${NAME} or ${NAME:-default} in a file.
type envRef struct {
	Name       string
	Line       int // in the original file
	HasDefault bool
	Set        bool // the variable is set (possibly to "")
}

// expandEnvRefs is expandEnv that also returns every reference it expanded.
func expandEnvRefs(data []byte, lookup func(string) (string, bool)) ([]byte, lineMap, []Error, []envRef) {
	var (
		refs  []envRef
		out   bytes.Buffer
		lines = lineMap{1}
		line  = 1
		errs  []Error
	)
	out.Grow(len(data))
	write := func(s string) {
		for i := 0; i < len(s); i++ {
			if s[i] == '\n' {
				lines = append(lines, line)
			}
		}
		out.WriteString(s)
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			line++
			lines = append(lines, line)
			out.WriteByte(c)
		case c == '$' && i+1 < len(data) && data[i+1] == '$':
			out.WriteByte('$')
			i++
		case c == '$' && i+1 < len(data) && data[i+1] == '{':
			end := bytes.IndexByte(data[i+2:], '}')
			nl := bytes.IndexByte(data[i+2:], '\n')
			if end < 0 || (nl >= 0 && nl < end) {
				errs = append(errs, Error{Line: line, Msg: `unterminated "${": write "}" on the same line, or "$$" for a literal "$"`})
				out.WriteByte(c)
				continue
			}
			ref := string(data[i+2 : i+2+end])
			val, err := expandRef(ref, lookup)
			if err != nil {
				errs = append(errs, Error{Line: line, Msg: err.Error()})
			} else {
				name, _, hasDef := strings.Cut(ref, ":-")
				_, set := lookup(name)
				if !inComment(data, i) {
					refs = append(refs, envRef{Name: name, Line: line, HasDefault: hasDef, Set: set})
				}
			}
			write(val)
			i += 2 + end
		default:
			out.WriteByte(c)
		}
	}
	return out.Bytes(), lines, errs, refs
}

// expandRef expands the inside of one ${...}.
func expandRef(ref string, lookup func(string) (string, bool)) (string, error) {
	name, def, hasDef := ref, "", false
	if i := strings.Index(ref, ":-"); i >= 0 {
		name, def, hasDef = ref[:i], ref[i+2:], true
	}
	if !envName.MatchString(name) {
		return "", fmt.Errorf("invalid variable reference %q: want ${NAME} or ${NAME:-default}", "${"+ref+"}")
	}
	val, ok := lookup(name)
	if hasDef && (!ok || val == "") {
		return def, nil
	}
	return val, nil
}

// inComment reports whether data[i] follows a "#" that starts a YAML
// comment on its line (at the start, or after a space). Comments are
// expanded like the rest, but an unset variable there is no one's problem.
func inComment(data []byte, i int) bool {
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	line := data[start:i]
	for j, c := range line {
		if c == '#' && (j == 0 || line[j-1] == ' ' || line[j-1] == '\t') {
			return true
		}
	}
	return false
}
