package core

import (
	"errors"
	"fmt"
)

// InputError is bad input on the host: a file, key or option that must be
// fixed by the administrator. The CLI exits 2 for it; nothing is written.
type InputError struct {
	// Where names the file (or option) and, when known, the key.
	Where string
	Msg   string
}

func (e *InputError) Error() string {
	if e.Where == "" {
		return e.Msg
	}
	return e.Where + ": " + e.Msg
}

func inputErr(where, format string, args ...any) *InputError {
	return &InputError{Where: where, Msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err (or one it wraps) is an InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}
