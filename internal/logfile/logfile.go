// Package logfile is a log file that can be reopened at its path while it
// is written to: after logrotate renamed it, Reopen (SIGUSR1, logrotate's
// convention) makes later writes create a new file at the path. The access
// logs and the error log (--error-logfile) are such files.
package logfile

import (
	"fmt"
	"os"
	"sync"
)

// File is a log file opened at a path, appended to, and reopened on
// Reopen. It is safe for concurrent use.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// Open opens path for appending, creating it (mode 0644) if needed.
func Open(path string) (*File, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
}

// Write appends p to the file.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path again and closes the old file; if the path cannot
// be opened, writes go on to the old file and the error says why.
func (l *File) Reopen() error {
	f, err := open(l.path)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", l.path, err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

// File is the open file (the supervisor hands it to its workers as their
// stderr). A Reopen closes it.
func (l *File) File() *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f
}

// Close closes the file.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
