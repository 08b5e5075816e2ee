// Package jsonenc holds the one piece of hand-written JSON encoding that the
// hot paths share (ingest's answers, transformations' output): quoting a
// string exactly as encoding/json does, without its reflection for the
// common all-ASCII case.
//
// It must not know the shapes it is used for (answers, transformed bodies):
// callers build their JSON around the quoted strings.
package jsonenc
