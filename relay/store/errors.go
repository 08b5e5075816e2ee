package store

import "errors"

// Sentinel errors that callers branch on. Backends wrap them with context.
var (
	// ErrNotFound reports that the event, delivery or DLQ entry does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrLeaseLost reports that a delivery's lease expired or was taken by another
	// worker, so the caller must not record an outcome for it.
	ErrLeaseLost = errors.New("store: lease lost")
	// ErrUnavailable reports that the backend cannot take reads or writes right
	// now (Redis down, disk error); ingest answers 503 on it.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrBadCursor reports a page cursor that the backend did not hand out.
	ErrBadCursor = errors.New("store: bad page cursor")
	// ErrClosed reports a call on a closed store.
	ErrClosed = errors.New("store: closed")
)
