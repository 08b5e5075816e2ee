// Package config reads, defaults and validates Relay's YAML configuration.
//
// It owns the config file format: the plain-data types in types.go, strict
// decoding (unknown keys, bad values and duplicate keys are errors: yaml.v3
// decodes, merges and refuses duplicates, and a walk over its node tree
// adds the lines, the keys' names and "did you mean" to what it reports), the
// expansion of ${VAR} and ${VAR:-default} from the environment, the defaults
// for every optional key (SetDefaults) and the checks that run before Relay
// accepts a file. Every problem is reported with the file and line it came
// from, all at once, as Errors.
//
// The package is plain data: it imports nothing from relay/, and runtime
// packages build their own types (routing tables, HTTP clients) from it.
// jq expressions (routes[].filter, destinations[].transform) stay strings;
// validation compiles them with gojq only to report errors with their line.
package config
