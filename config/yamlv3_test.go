package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// These tests pin what decode.go leaves to yaml.v3, so that an upgrade of
// the library that changes any of it fails here first.

type yamlProbe struct {
	A int               `yaml:"a"`
	B string            `yaml:"b"`
	M map[string]string `yaml:"m"`
	P *yamlProbe        `yaml:"p"`
}

func TestYAMLv3KnownFieldsOnlyInDecoder(t *testing.T) {
	const text = "a: 1\nnope: 2\n"
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	var v yamlProbe
	if err := dec.Decode(&v); err == nil || !strings.Contains(err.Error(), "line 2: field nope not found") {
		t.Errorf("Decoder with KnownFields: %v, want the unknown field refused", err)
	}
	// Node.Decode has no KnownFields: the walk must report unknown keys.
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	if err := n.Decode(&v); err != nil {
		t.Errorf("Node.Decode: %v, want unknown fields ignored", err)
	}
}

func TestYAMLv3CollectsTypeErrors(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("a: x\nb: [1]\nm: {k: v}\n"), &n); err != nil {
		t.Fatal(err)
	}
	var v yamlProbe
	err := n.Decode(&v)
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) != 2 {
		t.Fatalf("Decode: %v, want a TypeError holding both bad values", err)
	}
	if v.M["k"] != "v" {
		t.Errorf("m = %v, want decoded past the bad values", v.M)
	}
}

func TestYAMLv3RefusesDuplicateKeys(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("a: 1\nb: x\na: 2\nm: {k: v, k: w}\n"), &n); err != nil {
		t.Fatal(err)
	}
	var v yamlProbe
	err := n.Decode(&v)
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		t.Fatalf("Decode: %v, want a TypeError", err)
	}
	want := []string{`line 3: mapping key "a" already defined at line 1`}
	if strings.Join(te.Errors, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors = %q, want %q", te.Errors, want)
	}
	// The mapping holding the duplicate is skipped as a whole, so what
	// was decoded cannot be validated.
	if v.B != "" {
		t.Errorf("b = %q, want the mapping with a duplicate key left undecoded", v.B)
	}
}

func TestYAMLv3MergeKeys(t *testing.T) {
	const text = "x: &x {a: 1, b: one}\ny: &y {a: 2, b: two, m: {k: y}}\np:\n  <<: [*x, *y]\n  b: own\n"
	var v struct{ P yamlProbe }
	if err := yaml.Unmarshal([]byte(text), &v); err != nil {
		t.Fatal(err)
	}
	// Explicit keys win over merged ones; among merged mappings the first wins.
	if v.P.A != 1 || v.P.B != "own" || v.P.M["k"] != "y" {
		t.Errorf("p = %+v, want a from x, b its own, m from y", v.P)
	}
}

func TestYAMLv3MergeCycle(t *testing.T) {
	var v yamlProbe
	err := yaml.Unmarshal([]byte("p: &p\n  a: 1\n  p:\n    <<: *p\n"), &v)
	if err == nil || !strings.Contains(err.Error(), "anchor 'p' value contains itself") {
		t.Errorf("Unmarshal: %v, want the cycle refused", err)
	}
}

func TestYAMLv3NullSelectsNoPointer(t *testing.T) {
	// "embedded:" with no value must still select the section, which
	// yaml.v3 does not do (a null sets a pointer to nil): the walk turns
	// such a null into an empty mapping.
	var v yamlProbe
	if err := yaml.NewDecoder(bytes.NewReader([]byte("p:\n"))).Decode(&v); err != nil || v.P != nil {
		t.Errorf("p = %v, %v, want nil", v.P, err)
	}
}

func TestYAMLv3LenientScalars(t *testing.T) {
	// yaml.v3 reads a float into an int (truncating), yes/no into a bool
	// and no quoted number into an int: the walk keeps Relay's stricter and
	// friendlier rules (see scalar in decode.go).
	var v struct {
		I int
		B bool
		Q int
	}
	if err := yaml.Unmarshal([]byte("i: 4.5\nb: yes\n"), &v); err != nil || v.I != 4 || !v.B {
		t.Errorf("got %+v, %v, want 4.5 read as 4 and yes as true", v, err)
	}
	if err := yaml.Unmarshal([]byte("q: '8'\n"), &v); err == nil {
		t.Errorf("quoted 8 into an int: no error, want one")
	}
}
