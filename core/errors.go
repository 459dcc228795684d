package core

import (
	"errors"
	"fmt"
)

// Option names a run option in neutral terms; each front end renders it
// its own way (the CLI as --service-instance, the module as instance).
type Option string

// The run options an InputError can name.
const (
	OptHostname    Option = "hostname"
	OptInstance    Option = "instance"
	OptPrefix      Option = "prefix"
	OptTagSchema   Option = "tag_schema"
	OptCaptureTags Option = "capture_tags"
)

// InputError is bad input on the host: a file, key or option that must be
// fixed by the administrator. The CLI exits 2 for it; nothing is written.
type InputError struct {
	// Option is the run option at fault, if any.
	Option Option
	// Where names the file (relative to the prefix when inside it) and,
	// when known, the key: "main/shell.toml: key url".
	Where string
	Msg   string
	// Err is a cause callers may test with errors.Is (fs.ErrNotExist).
	Err error
}

// Describe renders the error, naming the option as the front end calls it.
func (e *InputError) Describe(optionName func(Option) string) string {
	s := ""
	if e.Option != "" {
		s = optionName(e.Option)
	}
	if e.Where != "" {
		if s != "" {
			s += " "
		}
		s += e.Where
	}
	if s == "" {
		return e.Msg
	}
	return s + ": " + e.Msg
}

func (e *InputError) Error() string {
	return e.Describe(func(o Option) string { return string(o) })
}

func (e *InputError) Unwrap() error { return e.Err }

func inputErr(where, format string, args ...any) *InputError {
	return &InputError{Where: where, Msg: fmt.Sprintf(format, args...)}
}

func optionErr(opt Option, format string, args ...any) *InputError {
	return &InputError{Option: opt, Msg: fmt.Sprintf(format, args...)}
}

// IsInputError reports whether err (or one it wraps) is an InputError.
func IsInputError(err error) bool {
	var ie *InputError
	return errors.As(err, &ie)
}
