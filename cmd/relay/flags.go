package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdHelp is what `relay CMD -h` prints: a one-line summary, the usage
// lines, optional notes, examples, then the flags.
type cmdHelp struct {
	name     string // as typed after "relay": "serve", "dlq list"
	summary  string
	usage    []string
	notes    string
	examples []string
}

// print writes the help, with fs's flags when fs is not nil.
func (h cmdHelp) print(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "relay %s — %s\n\nUsage:\n", h.name, h.summary)
	for _, u := range h.usage {
		fmt.Fprintf(w, "  %s\n", u)
	}
	if h.notes != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(h.notes, "\n"))
	}
	if len(h.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, e := range h.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if fs != nil && hasFlags(fs) {
		fmt.Fprintf(w, "\nFlags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseNoArgs is parseArgs for a command that takes no arguments: one
// given is a usage error.
func parseNoArgs(fs *flag.FlagSet, h cmdHelp, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	pos, code, ok := parseArgs(fs, h, args, stdout, stderr)
	if ok && len(pos) > 0 {
		return usageError(stderr, h, fmt.Sprintf("unexpected argument %q", pos[0])), false
	}
	return code, ok
}

// newFlags returns a flag set for the command h names. Errors go to stderr;
// the help is printed by parseArgs, on stdout.
func newFlags(h cmdHelp, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args into fs and returns the positional arguments.
// Flags may come before, between or after them (`events get ID --json`);
// "--" ends the flags. -h prints the help on stdout (stop with exit 0); a
// bad flag prints the flag package's message and a pointer to -h on stderr
// (stop with exit 2).
func parseArgs(fs *flag.FlagSet, h cmdHelp, args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	for {
		// fs.Parse swallows a "--" without a trace, so find it first,
		// stepping over the separate values of non-boolean flags.
		end := len(args)
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				end = i
				break
			}
			if strings.HasPrefix(a, "-") && a != "-" && !strings.Contains(a, "=") {
				if f := fs.Lookup(strings.TrimLeft(a, "-")); f != nil && !isBool(f) {
					i++
				}
			}
		}
		err := fs.Parse(args[:end])
		if errors.Is(err, flag.ErrHelp) {
			h.print(stdout, fs)
			return nil, 0, false
		}
		if err != nil {
			fmt.Fprintf(stderr, "run `relay %s -h` for usage\n", h.name)
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			if end < len(args) {
				pos = append(pos, args[end+1:]...)
			}
			return pos, 0, true
		}
		pos = append(pos, rest[0])
		args = append(rest[1:], args[end:]...)
	}
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usageError prints msg and a pointer to -h on stderr and returns exit code 2.
func usageError(stderr io.Writer, h cmdHelp, msg string) int {
	fmt.Fprintf(stderr, "relay %s: %s\nrun `relay %s -h` for usage\n", h.name, msg, h.name)
	return 2
}
