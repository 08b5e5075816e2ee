package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// LoadFile reads the config file at path and loads it as Load does.
func LoadFile(path string) (*Config, error) {
	return LoadFileWith(path, Options{})
}

// Options adjust LoadFileWith and LoadWith.
type Options struct {
	// Listen and AdminListen, when set, replace the file's listen and
	// admin.listen (from flags or the environment) and are validated as if
	// the file said them.
	Listen, AdminListen string
	// Lookup reads the environment; default os.LookupEnv.
	Lookup func(string) (string, bool)
}

// LoadFileWith is LoadFile with options.
func LoadFileWith(path string, o Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return LoadWith(data, path, o)
}

// Load parses, defaults and validates a config. file names the source in
// messages and in Config.File; pass "" for a config that has no file (its
// messages then say "<config>").
//
// The steps, in order: ${VAR} and ${VAR:-default} are expanded from the
// environment in the raw text; the YAML is parsed and decoded strictly;
// SetDefaults fills unset keys; the result is validated. On any problem Load
// returns nil and an Errors holding every problem found, in line order, each
// formatted FILE:LINE: message. A syntax error or a bad ${...} stops Load
// before decoding, so it is reported alone; a key written twice in one
// mapping stops it before validation (yaml.v3 leaves that whole mapping
// undecoded), so it is reported with the other decoding problems only.
func Load(data []byte, file string) (*Config, error) {
	return LoadWith(data, file, Options{})
}

// LoadWith is Load with options. An empty file (nothing but comments) is an
// error: it is a wrong path or an unsaved file far more often than a wish
// to run with no routes.
func LoadWith(data []byte, file string, o Options) (*Config, error) {
	lookup := o.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	expanded, lines, errs, refs := expandEnvRefs(data, lookup)
	if len(errs) > 0 {
		return nil, finish(errs, file, lines)
	}
	root, errs := parse(expanded)
	if len(errs) > 0 {
		return nil, finish(errs, file, lines)
	}
	if root == nil || (root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		return nil, finish([]Error{{Msg: "the file is empty: start from relay.example.yaml, which documents every key"}}, file, lines)
	}
	c := &Config{}
	pos, decodeErrs, complete := decode(root, c)
	if o.Listen != "" {
		c.Listen = o.Listen
	}
	if o.AdminListen != "" {
		c.Admin.Listen = o.AdminListen
	}
	c.File = file
	for i := range c.Routes {
		c.Routes[i].Line = lines.orig(pos.line("routes." + strconv.Itoa(i)))
	}
	for i := range c.Destinations {
		c.Destinations[i].Line = lines.orig(pos.line("destinations." + strconv.Itoa(i)))
	}
	var problems []Error
	if complete {
		problems = checkPresence(c, pos)
		c.SetDefaults()
		problems = append(problems, validate(c, pos)...)
	}
	secrets, warnings := checkEnvRefs(refs, pos, lines)
	problems = append(problems, notOnLines(secrets, problems)...)
	if all := combine(decodeErrs, problems); len(all) > 0 {
		return nil, finish(all, file, lines)
	}
	if len(warnings) > 0 {
		c.Warnings = finish(warnings, file, lineMap{})
	}
	return c, nil
}

// notOnLines returns the errors of extra on lines that have none in
// problems: a secret left empty by an unset variable is often reported by
// validation already ("token is required"), and once is enough.
func notOnLines(extra, problems []Error) []Error {
	taken := map[int]bool{}
	for _, p := range problems {
		taken[p.Line] = true
	}
	var out []Error
	for _, e := range extra {
		if !taken[e.Line] {
			out = append(out, e)
		}
	}
	return out
}

// secretKey matches the keys whose value is a secret: an unset variable
// there would silently turn authentication off or sign with "".
var secretKey = regexp.MustCompile(`^(admin\.token|agents\.\d+\.token|portals\.\d+\.token|destinations\.\d+\.signing_secret|(ingest|routes\.\d+)\.auth\.(token|hmac\.secret|standard_webhooks\.secret))$`)

// checkEnvRefs returns an error for each unset ${VAR} without a default that
// feeds a secret key, and a warning for every other one. Lines are the
// original file's (refs carry them so; pos is mapped through lines).
func checkEnvRefs(refs []envRef, pos positions, lines lineMap) (errs, warnings []Error) {
	secretAt := map[int]string{}
	for path, l := range pos {
		if secretKey.MatchString(path) {
			secretAt[lines.orig(l)] = path
		}
	}
	for _, r := range refs {
		if r.Set || r.HasDefault {
			continue
		}
		if key, ok := secretAt[r.Line]; ok {
			errs = append(errs, Error{Line: r.Line, Msg: fmt.Sprintf(
				"${%s} is not set in the environment of this process, and %s is a secret: set %s, or write ${%s:-} if %s may be empty",
				r.Name, key, r.Name, r.Name, key)})
			continue
		}
		warnings = append(warnings, Error{Line: r.Line, Msg: fmt.Sprintf(
			"${%s} is not set in the environment of this process; it expands to \"\" (write ${%s:-} to mean that)", r.Name, r.Name)})
	}
	return errs, warnings
}

// combine joins decoding errors and validation problems, leaving out the
// problems on a line that already has a decoding error: a value that could
// not be decoded stays zero, and "url is required" under "url: [x]" would
// only repeat "url: expected a single value".
func combine(decodeErrs, problems []Error) []Error {
	bad := map[int]bool{}
	for _, e := range decodeErrs {
		bad[e.Line] = true
	}
	all := decodeErrs
	for _, p := range problems {
		if !bad[p.Line] {
			all = append(all, p)
		}
	}
	return all
}

// finish maps lines back to the original file, names the file and sorts.
func finish(errs []Error, file string, lines lineMap) Errors {
	if file == "" {
		file = fileLabel
	}
	out := make(Errors, len(errs))
	for i, e := range errs {
		e.File = file
		e.Line = lines.orig(e.Line)
		out[i] = e
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// parse reads exactly one YAML document. It returns nil for an empty file
// (every key then takes its default).
func parse(data []byte) (*yaml.Node, []Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, []Error{parseError(err, data)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, []Error{parseError(err, data)}
		}
		return nil, []Error{{Line: extra.Line, Msg: `a second YAML document ("---") is not allowed: write one config per file`}}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

var (
	yamlLineError = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// parseError turns a yaml.v3 syntax error into an Error with a line. Most
// carry "line N:"; yaml.v3 leaves it out for problems on the first line and
// for a few that it reports without a position, for which the line is found
// in data where possible.
func parseError(err error, data []byte) Error {
	if m := yamlLineError.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		if tab := tabLine(data, line); tab > 0 {
			return Error{Line: tab, Msg: "invalid YAML: a tab indents this line; YAML indents with spaces only"}
		}
		return Error{Line: line, Msg: "invalid YAML: " + m[2]}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return Error{Line: guessLine(msg, data), Msg: "invalid YAML: " + msg}
}

// guessLine finds the line a position-less yaml.v3 error is about, else 1.
func guessLine(msg string, data []byte) int {
	match := func(line []byte) bool { return false }
	switch m := unknownAnchor.FindStringSubmatch(msg); {
	case m != nil:
		match = func(line []byte) bool { return bytes.Contains(line, []byte("*"+m[1])) }
	case strings.Contains(msg, "UTF-8"):
		match = func(line []byte) bool { return !utf8.Valid(line) }
	case strings.Contains(msg, "control characters"):
		match = func(line []byte) bool {
			return bytes.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\r' })
		}
	}
	for i, line := range bytes.Split(data, []byte("\n")) {
		if match(line) {
			return i + 1
		}
	}
	return 1
}

// tabLine returns the line at or next to line (yaml.v3 reports a tab on
// the line before or after it, depending on the construct) whose
// indentation holds a tab; 0 when none does.
func tabLine(data []byte, line int) int {
	all := bytes.Split(data, []byte("\n"))
	for _, l := range []int{line, line + 1, line - 1} {
		if l < 1 || l > len(all) {
			continue
		}
		text := all[l-1]
		indent := text[:len(text)-len(bytes.TrimLeft(text, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return l
		}
	}
	return 0
}
