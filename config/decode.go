package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// positions maps the path of every key present in the file
// ("destinations.0.retry.max_attempts", "routes.2.to.1") to its line.
// Validation uses it to point at the offending line, and Load to tell a key
// that is absent from one set to its zero value.
type positions map[string]int

// line returns the line of the first of paths that is present, else 0.
func (p positions) line(paths ...string) int {
	for _, path := range paths {
		if l, ok := p[path]; ok {
			return l
		}
	}
	return 0
}

// decode decodes root into c. yaml.v3 does the decoding: values, merge keys
// and the refusal of a key written twice. Before it, a walk over the node
// tree records positions and words what yaml.v3 would report as
// "line 7: cannot unmarshal !!str `four` into int" as
// "concurrency: expected an integer, got "four"", and unknown keys (which
// Node.Decode ignores: only yaml.Decoder has KnownFields, and it cannot
// decode the tree the walk adjusted) with a "did you mean". complete is
// false when yaml.v3 refused part of the file: it skips a mapping with a
// duplicate key as a whole, so c is not worth validating.
func decode(root *yaml.Node, c *Config) (pos positions, errs []Error, complete bool) {
	w := &walker{pos: positions{}, active: map[*yaml.Node]bool{}}
	root = w.walk(root, reflect.TypeFor[Config](), "", "")
	err := root.Decode(c)
	if err == nil {
		return w.pos, w.errs, true
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return w.pos, append(w.errs, Error{Msg: err.Error()}), false
	}
	for _, e := range te.Errors {
		// yaml.v3 writes each as "line N: message".
		var line int
		if l, msg, ok := strings.Cut(strings.TrimPrefix(e, "line "), ": "); ok {
			if n, err := strconv.Atoi(l); err == nil {
				line, e = n, msg
			}
		}
		w.fail(line, "%s", e)
	}
	return w.pos, w.errs, false
}

// walker goes over the node tree alongside the Go type it decodes into.
// It reports what yaml.v3 would not, or would word without the key, and
// hands yaml.v3 a tree it decodes without error but for duplicate keys: a
// value it reported is replaced by a null (its field stays unset).
type walker struct {
	errs []Error
	pos  positions
	// active holds the collection nodes being walked, so that an alias to
	// one of its own ancestors is reported instead of walked forever.
	active map[*yaml.Node]bool
}

// fail records a problem once: a value reached through several aliases is
// walked once per alias.
func (w *walker) fail(line int, format string, args ...any) {
	e := Error{Line: line, Msg: fmt.Sprintf(format, args...)}
	for _, old := range w.errs {
		if old == e {
			return
		}
	}
	w.errs = append(w.errs, e)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk checks n against t and returns the node to decode in its place. path
// names the value in positions; key is the mapping key it sits under, for
// messages.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path, key string) *yaml.Node {
	v := n
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		v = n.Alias
	}
	if v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
		if w.active[v] {
			w.fail(n.Line, "%s: alias refers to a value that contains it", label(key))
			return null(n)
		}
		w.active[v] = true
		defer delete(w.active, v)
	}
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		// A key written with no value ("embedded:") still selects a
		// pointer-to-struct section; anything else stays unset.
		if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column}
		}
		return n
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := v.Decode(reflect.New(t).Interface()); err != nil {
			w.fail(v.Line, "%s: %v", label(key), err)
			return null(n)
		}
		return n
	}
	want := map[reflect.Kind]yaml.Kind{reflect.Struct: yaml.MappingNode, reflect.Map: yaml.MappingNode, reflect.Slice: yaml.SequenceNode}[t.Kind()]
	if want == 0 {
		want = yaml.ScalarNode
	}
	if v.Kind != want {
		w.fail(v.Line, "%s: expected %s, got %s", label(key), map[yaml.Kind]string{
			yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list", yaml.ScalarNode: "a single value"}[want], describe(v))
		return null(n)
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		w.mapping(v, t, path, key)
	case reflect.Slice:
		for i, item := range v.Content {
			p := join(path, strconv.Itoa(i))
			w.pos[p] = item.Line
			v.Content[i] = w.walk(item, t.Elem(), p, key)
		}
	default:
		return w.scalar(n, v, t, key)
	}
	return n
}

// mapping walks the entries of mapping n, decoded into t (a struct or a
// map), explicit keys first: they win over merged ones, and their lines
// are the ones to point at.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, path, key string) {
	var fields map[string]int
	if t.Kind() == reflect.Struct {
		fields = yamlFields(t)
	}
	var merges []int
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, len(kept)+1)
			kept = append(kept, k, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.fail(k.Line, "mapping keys must be single values, got %s", describe(k))
			continue // dropped: yaml.v3 would refuse it too
		}
		kept = append(kept, k, v)
		name, p, vt, vkey := k.Value, join(path, k.Value), reflect.Type(nil), key+"."+k.Value
		if fields == nil {
			vt = t.Elem()
		} else if f, ok := fields[name]; ok {
			vt, vkey = t.Field(f).Type, name
		} else {
			w.fail(k.Line, "%s", unknownKey(name, key, fields))
			continue
		}
		if _, seen := w.pos[p]; !seen {
			w.pos[p] = k.Line
		}
		kept[len(kept)-1] = w.walk(v, vt, p, vkey)
	}
	n.Content = kept
	for _, i := range merges {
		n.Content[i] = w.merge(n.Content[i], t, path, key)
	}
}

// merge walks the value of a merge key ("<<: *base", "<<: [*a, *b]") as
// part of the mapping it is merged into; yaml.v3 does the merging.
func (w *walker) merge(n *yaml.Node, t reflect.Type, path, key string) *yaml.Node {
	maps := []*yaml.Node{n}
	if v := resolveAlias(n); v.Kind == yaml.SequenceNode {
		maps = v.Content
	}
	for _, m := range maps {
		v := resolveAlias(m)
		switch {
		case v.Kind != yaml.MappingNode:
			w.fail(v.Line, "<<: expected a mapping or a list of mappings to merge, got %s", describe(v))
		case w.active[v]:
			w.fail(m.Line, "<<: alias refers to a mapping that contains it")
		default:
			continue
		}
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	}
	for _, m := range maps {
		v := resolveAlias(m)
		w.active[v] = true
		w.mapping(v, t, path, key)
		delete(w.active, v)
	}
	return n
}

// scalar checks scalar v (written as n) against t. A string takes any
// scalar as written (webhook_id: 1001 is the text "1001"). Numbers may be
// quoted, as "${CONCURRENCY:-4}" often is; yaml.v3 does not read a quoted
// number into an int, so the walk hands it the number unquoted. An integer
// must be written as one (yaml.v3 would truncate 4.5 to 4), and a bool as
// true or false (yaml.v3 also takes yes, no, on and off).
func (w *walker) scalar(n, v *yaml.Node, t reflect.Type, key string) *yaml.Node {
	var want string
	switch t.Kind() {
	case reflect.String:
		return n
	case reflect.Bool:
		want = "true or false"
		if v.ShortTag() != "!!bool" {
			v = nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want = "an integer"
		if v = unquote(v); v.ShortTag() != "!!int" {
			v = nil
		}
	case reflect.Float32, reflect.Float64:
		want = "a number"
		v = unquote(v)
	default:
		// Only reachable if types.go gains a field of a kind handled nowhere above.
		w.fail(n.Line, "%s: cannot decode into %s", label(key), t)
		return null(n)
	}
	if v == nil || v.Decode(reflect.New(t).Interface()) != nil {
		v = resolveAlias(n)
		w.fail(v.Line, "%s: expected %s, got %q", label(key), want, v.Value)
		return null(n)
	}
	return v
}

// unquote returns a quoted number as the number, and any other node as it is.
func unquote(n *yaml.Node) *yaml.Node {
	if n.ShortTag() != "!!str" {
		return n
	}
	s, tag := strings.TrimSpace(n.Value), "!!float"
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		s, tag = strconv.FormatInt(i, 10), "!!int"
	} else if _, err := strconv.ParseFloat(s, 64); err != nil {
		return n
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s, Line: n.Line, Column: n.Column}
}

// null stands in for a value the walk reported, so yaml.v3 leaves it unset.
func null(n *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlFields maps the yaml tag names of t's fields to their index.
func yamlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
	}
	return fields
}

// unknownKey words the message for a key no field has, suggesting the
// nearest known key when the difference looks like a typo.
func unknownKey(name, parent string, fields map[string]int) string {
	msg := fmt.Sprintf("unknown key %q", name)
	if parent != "" {
		msg += " in " + parent
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	if s := suggest(name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// suggest returns the known key closest to name, or "" if none is close:
// the same but for case and separators, a shortening ("max_body"), or at
// most two edits away.
func suggest(name string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 3 // at most two edits
	for _, k := range known {
		if norm(k) == norm(name) || len(name) >= 4 && strings.HasPrefix(k, strings.ToLower(name)) {
			return k
		}
		if dist := editDistance(strings.ToLower(name), k); dist < bestDist && dist < len(k) {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance, so a swap of two letters ("retyr") counts as one edit.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// describe names a node's shape for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// label names the key a message is about; the document root has none.
func label(key string) string {
	if key == "" {
		return "config"
	}
	return key
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
