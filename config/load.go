package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// LoadFile reads the config file at path and loads it as Load does.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Load(data, path)
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
// before decoding, so it is reported alone.
func Load(data []byte, file string) (*Config, error) {
	expanded, lines, errs := expandEnv(data, os.LookupEnv)
	if len(errs) > 0 {
		return nil, finish(errs, file, lines)
	}
	root, errs := parse(expanded)
	if len(errs) > 0 {
		return nil, finish(errs, file, lines)
	}
	c := &Config{}
	d := newDecoder()
	if root != nil {
		d.decode(root, reflect.ValueOf(c).Elem(), "", "")
	}
	c.File = file
	for i := range c.Routes {
		c.Routes[i].Line = lines.orig(d.pos.line("routes." + strconv.Itoa(i)))
	}
	for i := range c.Destinations {
		c.Destinations[i].Line = lines.orig(d.pos.line("destinations." + strconv.Itoa(i)))
	}
	problems := checkPresence(c, d.pos)
	c.SetDefaults()
	problems = append(problems, validate(c, d.pos)...)
	if all := combine(d.errs, problems); len(all) > 0 {
		return nil, finish(all, file, lines)
	}
	return c, nil
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
