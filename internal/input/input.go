// Package input is the one error type for bad input on a host: a file, a
// key or a run option the administrator must fix. Front ends render it in
// their own terms (the CLI names --service-instance, the Ansible module
// instance or executors[2].url); the CLI exits 2 for it and nothing is
// written.
package input

import (
	"errors"
	"fmt"
	"strings"
)

// Option names a run option in neutral terms (a front end renders it its
// own way), or, for the Ansible module's declared files, the option path
// a value came from ("clients[0].url").
type Option string

// The run options an Error can name.
const (
	Hostname       Option = "hostname"
	Instance       Option = "instance"
	Prefix         Option = "prefix"
	TagSchema      Option = "tag_schema"
	CaptureTags    Option = "capture_tags"
	OmitAutoTags   Option = "omit_auto_tags"
	Concurrency    Option = "concurrency"
	CaptureTimeout Option = "capture_timeout"
	LockTimeout    Option = "lock_timeout"
	Strict         Option = "strict"
	Unregister     Option = "unregister"
	Fleet          Option = "fleet"
	RunnerPID      Option = "runner_pid"
)

// Names renders an Option as a front end calls it.
type Names func(Option) string

// Neutral names options as they are.
func Neutral(o Option) string { return string(o) }

// Error is bad input. Every field but Msg is optional.
type Error struct {
	// Option is the run option at fault.
	Option Option
	// File is the file at fault, relative to the prefix when inside it.
	File string
	// Line and Column are where in File, when a parser said.
	Line, Column int
	// Key is the key within File ("url", "client_configs[0].url").
	Key string
	// Msg says what is wrong (not where, nor how to fix it).
	Msg string
	// Fix says what to do; FixOption, when set, is the option the fix
	// asks for, named by the front end after Fix ("… or raise" --lock-timeout).
	Fix       string
	FixOption Option
	// Err is a cause callers may test with errors.Is (fs.ErrNotExist).
	Err error
	// Whole: Msg is a whole sentence that names its option itself (the
	// Ansible module's argument checks, worded as Ansible words its own),
	// so Render does not put the place before it.
	Whole bool
}

// Errorf builds an Error for a file and key (either may be empty).
func Errorf(file, key, format string, args ...any) *Error {
	return &Error{File: file, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// OptionErrorf builds an Error for a run option.
func OptionErrorf(opt Option, format string, args ...any) *Error {
	return &Error{Option: opt, Msg: fmt.Sprintf(format, args...)}
}

// WithFix sets the fix and returns e.
func (e *Error) WithFix(format string, args ...any) *Error {
	e.Fix = fmt.Sprintf(format, args...)
	return e
}

// Where is the place the error names: option, file, line and key.
func (e *Error) Where(name Names) string {
	var parts []string
	if e.Option != "" {
		parts = append(parts, name(e.Option))
	}
	if e.File != "" {
		parts = append(parts, e.File)
	}
	s := strings.Join(parts, " ")
	add := func(p string) {
		if s != "" {
			s += ": "
		}
		s += p
	}
	if e.Line > 0 {
		l := fmt.Sprintf("line %d", e.Line)
		if e.Column > 0 {
			l += fmt.Sprintf(", column %d", e.Column)
		}
		add(l)
	}
	if e.Key != "" {
		add("key " + e.Key)
	}
	return s
}

// Render is the message with options named by the front end.
func (e *Error) Render(name Names) string {
	msg := e.Msg
	if fix := e.FixText(name); fix != "" {
		msg += "; " + fix
	}
	if w := e.Where(name); w != "" && !e.Whole {
		return w + ": " + msg
	}
	return msg
}

// FixText is the fix with its option named by the front end.
func (e *Error) FixText(name Names) string {
	fix := e.Fix
	if e.FixOption != "" {
		if n := name(e.FixOption); n != "" {
			fix = strings.TrimSpace(fix + " " + n)
		}
	}
	return fix
}

func (e *Error) Error() string { return e.Render(Neutral) }

func (e *Error) Unwrap() error { return e.Err }

// Fields is an Error as front ends report it in JSON: each part on its
// own, options named by the front end, so scripts read fields instead of
// wording.
type Fields struct {
	Option string `json:"option,omitempty"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Key    string `json:"key,omitempty"`
	// Message says what is wrong; Fix what to do (with FixOption named
	// in it); FixOption is the option the fix asks for.
	Message   string `json:"message"`
	Fix       string `json:"fix,omitempty"`
	FixOption string `json:"fix_option,omitempty"`
}

// Fields gives the error's parts with options named by the front end.
func (e *Error) Fields(name Names) Fields {
	f := Fields{File: e.File, Line: e.Line, Column: e.Column, Key: e.Key, Message: e.Msg, Fix: e.FixText(name)}
	if e.Option != "" {
		f.Option = name(e.Option)
	}
	if e.FixOption != "" {
		f.FixOption = name(e.FixOption)
	}
	return f
}

// All lists the Errors in err's tree, joined errors included, in order.
func All(err error) []*Error {
	switch e := err.(type) {
	case nil:
		return nil
	case *Error:
		return []*Error{e}
	case interface{ Unwrap() []error }:
		var out []*Error
		for _, x := range e.Unwrap() {
			out = append(out, All(x)...)
		}
		return out
	case interface{ Unwrap() error }:
		return All(e.Unwrap())
	}
	return nil
}

// At places err in file at key. An Error from reading the file (which may
// name its own line, column and key) gets file, and key unless it names
// one; any other error becomes an Error saying its text.
func At(file, key string, err error) *Error {
	if ie := As(err); ie != nil {
		out := *ie
		if out.File == "" {
			out.File = file
		}
		if out.Key == "" {
			out.Key = key
		}
		return &out
	}
	return &Error{File: file, Key: key, Msg: err.Error(), Err: err}
}

// As returns the Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Is reports whether err (or one it wraps) is an Error.
func Is(err error) bool { return As(err) != nil }

// Describe renders err for a front end, each of joined errors on a line
// of its own: an Error, or another error with a Render method (wrapped in
// nothing that adds words), with options named by the front end; any
// other error as it says itself. Both front
// ends print failures with it.
func Describe(err error, name Names) string {
	if err == nil {
		return ""
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		lines := make([]string, 0, len(j.Unwrap()))
		for _, e := range j.Unwrap() {
			lines = append(lines, Describe(e, name))
		}
		return strings.Join(lines, "\n")
	}
	var r renderer
	if errors.As(err, &r) && r.Error() == err.Error() {
		return r.Render(name)
	}
	return err.Error()
}

// renderer is an error that names options as a front end does: an Error,
// or a refusal such as the clean-up's.
type renderer interface {
	error
	Render(Names) string
}

// Report gives every Error in err's tree as fields, options named by the
// front end (nil when there is none): the input_errors of both front
// ends' JSON.
func Report(err error, name Names) []Fields {
	ies := All(err)
	if len(ies) == 0 {
		return nil
	}
	out := make([]Fields, len(ies))
	for i, ie := range ies {
		out[i] = ie.Fields(name)
	}
	return out
}
