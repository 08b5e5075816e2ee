package bolt

import "errors"

// rejectError marks an error that a write op found before writing anything
// (not found, lease lost). The batch commits without that op; any other error
// from an op rolls the transaction back.
type rejectError struct{ err error }

func (e rejectError) Error() string { return e.err.Error() }
func (e rejectError) Unwrap() error { return e.err }

// reject marks err as found before any write.
func reject(err error) error { return rejectError{err} }

func isReject(err error) bool {
	var r rejectError
	return errors.As(err, &r)
}
