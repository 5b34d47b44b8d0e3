package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	File   string // file name as given to Load or Parse
	Line   int    // 1-based; 0 when the problem has no place in the file
	Column int    // 1-based; 0 when unknown
	Key    string // key path, like "sites[0].vdirs[1].pool"; "" for the whole file
	Msg    string // the constraint, like "must be between 1 and 256, got 0"
}

// Error formats e as "file:line:column: key: msg", leaving out what is
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// problems collects errors or warnings.
type problems []*Error

// sorted orders p by position; problems without one come last.
func (p problems) sorted() problems {
	slices.SortStableFunc(p, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return p
}

func (p problems) join() error {
	if len(p) == 0 {
		return nil
	}
	errs := make([]error, len(p))
	for i, e := range p.sorted() {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (p problems) strings() []string {
	if len(p) == 0 {
		return nil
	}
	s := make([]string, len(p))
	for i, e := range p.sorted() {
		s[i] = e.Error()
	}
	return s
}

// Problems returns the *Error values in err (an errors.Join tree from Load,
// Parse or FromJSON), in order; nil if it holds none.
func Problems(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if ce, ok := e.(*Error); ok {
			out = append(out, ce)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
