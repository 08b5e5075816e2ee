package config

import (
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

// decoder turns a yaml.Node tree into Go values, strictly. It is used instead
// of yaml.v3's own decoding because Node.Decode ignores KnownFields, and
// yaml.v3's TypeError (which does collect every bad value) names a line and
// a Go type, not the key's path or a "did you mean": here every unknown key,
// bad value and duplicate key is collected with its path and line.
type decoder struct {
	errs []Error
	pos  positions
	// active holds the collection nodes being decoded or merged, so that an
	// alias to one of its own ancestors is reported instead of recursing forever.
	active map[*yaml.Node]bool
}

func newDecoder() *decoder {
	return &decoder{pos: positions{}, active: map[*yaml.Node]bool{}}
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, Error{Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// decode stores n into v, which must be addressable. path names v in
// positions; key is the mapping key v sits under, for messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path, key string) {
	written := n // where the value is written, when n is an alias
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// A key written with no value ("embedded:") still selects a
		// pointer-to-struct section; anything else keeps its zero value,
		// which SetDefaults treats as unset.
		if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, key)
		return
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if d.active[n] {
			d.fail(written, "%s: alias refers to a value that contains it", label(key))
			return
		}
		d.active[n] = true
		defer delete(d.active, n)
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, "%s: %v", label(key), err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.structure(n, v, path, key)
	case reflect.Map:
		d.mapping(n, v, path, key)
	case reflect.Slice:
		d.sequence(n, v, path, key)
	default:
		d.scalar(n, v, key)
	}
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s: expected a mapping, got %s", label(key), describe(n))
		return
	}
	fields := yamlFields(v.Type())
	for _, e := range d.entries(n) {
		name := e.key.Value
		i, ok := fields[name]
		if !ok {
			d.fail(e.key, "%s", unknownKey(name, key, fields))
			continue
		}
		p := join(path, name)
		d.pos[p] = e.key.Line
		d.decode(e.value, v.Field(i), p, name)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path, key string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, "%s: expected a mapping, got %s", label(key), describe(n))
		return
	}
	t := v.Type()
	entries := d.entries(n)
	m := reflect.MakeMapWithSize(t, len(entries))
	for _, e := range entries {
		name := e.key.Value
		p := join(path, name)
		d.pos[p] = e.key.Line
		val := reflect.New(t.Elem()).Elem()
		d.decode(e.value, val, p, key+"."+name)
		m.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), val)
	}
	v.Set(m)
}

// sequence always stores a non-nil slice, so that an explicit "[]" can be
// told apart from an absent key (nil): dedupe.fields relies on it.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path, key string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "%s: expected a list, got %s", label(key), describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := join(path, strconv.Itoa(i))
		d.pos[p] = item.Line
		d.decode(item, s.Index(i), p, key)
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, "%s: expected a single value, got %s", label(key), describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		// Any scalar is text as written: webhook_id: 1001 and match values
		// such as duration: 23 compare as the text the provider sends.
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, "%s: expected true or false, got %q", label(key), n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := parseInt(n)
		if !ok || v.OverflowInt(i) {
			d.fail(n, "%s: expected an integer, got %q", label(key), n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		f, ok := parseFloat(n)
		if !ok {
			d.fail(n, "%s: expected a number, got %q", label(key), n.Value)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if types.go gains a field of a kind handled nowhere above.
		d.fail(n, "%s: cannot decode into %s", label(key), v.Type())
	}
}

// parseInt accepts YAML integers, and quoted decimal integers because values
// such as "${CONCURRENCY:-4}" are often quoted.
func parseInt(n *yaml.Node) (int64, bool) {
	var i int64
	switch n.ShortTag() {
	case "!!int":
		return i, n.Decode(&i) == nil
	case "!!str":
		i, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// parseFloat accepts YAML numbers and quoted decimal numbers.
func parseFloat(n *yaml.Node) (float64, bool) {
	var f float64
	switch n.ShortTag() {
	case "!!int", "!!float":
		return f, n.Decode(&f) == nil
	case "!!str":
		f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
		return f, err == nil
	}
	return 0, false
}

type entry struct{ key, value *yaml.Node }

// entries returns the key/value pairs of mapping n, with merge keys
// ("<<: *base") expanded: explicit keys override merged ones, and among
// merged mappings the first wins, as the YAML merge key spec says.
// A key written twice in n itself is an error.
func (d *decoder) entries(n *yaml.Node) []entry {
	var explicit, merged []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, "mapping keys must be single values, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.fail(k, "mapping key %q already defined at line %d", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		explicit = append(explicit, entry{k, val})
	}
	for _, e := range merged {
		if _, dup := seen[e.key.Value]; !dup {
			seen[e.key.Value] = e.key.Line
			explicit = append(explicit, e)
		}
	}
	return explicit
}

// merge returns the entries a merge key's value brings in.
func (d *decoder) merge(n *yaml.Node) []entry {
	n = resolveAlias(n)
	var maps []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{n}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			if item = resolveAlias(item); item.Kind != yaml.MappingNode {
				d.fail(item, "<<: expected a mapping to merge, got %s", describe(item))
				return nil
			}
			maps = append(maps, item)
		}
	default:
		d.fail(n, "<<: expected a mapping or a list of mappings to merge, got %s", describe(n))
		return nil
	}
	var out []entry
	for _, m := range maps {
		if d.active[m] {
			d.fail(n, "<<: alias refers to a mapping that contains it")
			continue
		}
		d.active[m] = true
		out = append(out, d.entries(m)...)
		delete(d.active, m)
	}
	return out
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
