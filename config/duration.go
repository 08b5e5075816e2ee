package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// String formats d as a Go duration ("1h0m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reads a Go duration string such as "250ms" or "24h". A null
// leaves d unchanged, so the key counts as unset.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration, got %s", describe(n))
	}
	if n.ShortTag() == "!!null" {
		return nil
	}
	return d.UnmarshalText([]byte(n.Value))
}

// MarshalYAML writes d as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText reads a Go duration string, for JSON and flags.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a Go duration such as \"250ms\", \"10s\" or \"24h\"", text)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d as a Go duration string, so JSON shows "10s", not nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
