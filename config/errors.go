package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every Errors value that Load returns,
// so callers can tell a bad config apart from a file that could not be read.
var ErrInvalid = errors.New("config: invalid configuration")

// fileLabel stands in for the file name when a config is loaded from bytes.
const fileLabel = "<config>"

// Error is one problem in a config file.
type Error struct {
	File string // file name as given to Load, or "<config>"
	Line int    // 1-based line, 0 when the problem has no single line
	Msg  string
}

// Error formats e as FILE:LINE: message (FILE: message without a line).
func (e Error) Error() string {
	file := e.File
	if file == "" {
		file = fileLabel
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", file, e.Msg)
}

// Errors is every problem found in one config file, in line order.
type Errors []Error

// Error formats the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is ErrInvalid.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the single problems, so errors.As can find an Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
