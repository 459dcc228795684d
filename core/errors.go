package core

import (
	"errors"
	"fmt"
	"strings"
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
	OptConcurrency Option = "concurrency"
	// Options a message may point to as the fix.
	OptCaptureTimeout Option = "capture_timeout"
	OptLockTimeout    Option = "lock_timeout"
	OptStrict         Option = "strict"
	OptUnregister     Option = "unregister"
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

// Describe renders the error, naming the option as the front end calls it;
// "{capture_timeout}" in the message names that option too.
func (e *InputError) Describe(optionName func(Option) string) string {
	return e.describe(optionName)
}

// NameOptions replaces every "{option}" in msg with the option's name.
func NameOptions(msg string, optionName func(Option) string) string {
	if !strings.Contains(msg, "{") {
		return msg
	}
	for _, o := range []Option{OptHostname, OptInstance, OptPrefix, OptTagSchema, OptCaptureTags, OptConcurrency,
		OptCaptureTimeout, OptLockTimeout, OptStrict, OptUnregister} {
		msg = strings.ReplaceAll(msg, "{"+string(o)+"}", optionName(o))
	}
	return msg
}

func (e *InputError) describe(optionName func(Option) string) string {
	msg := NameOptions(e.Msg, optionName)
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
		return msg
	}
	return s + ": " + msg
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
