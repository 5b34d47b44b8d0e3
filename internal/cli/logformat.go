package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// logFormatEnv carries the error log's format to the worker processes of a
// pool, which inherit the environment (and may be given it directly).
const logFormatEnv = "WISP_LOG_FORMAT"

// logFormat resolves the error log's format: "text" (for a person: a
// multi-line message such as a traceback is printed as its lines) or
// "logfmt" (one key=value line per record, for machines). "" or "auto" is
// $WISP_LOG_FORMAT when set, else text when w is a terminal and logfmt
// otherwise.
func logFormat(format string, w io.Writer) (string, error) {
	if format == "" || format == "auto" {
		format = os.Getenv(logFormatEnv)
	}
	switch format {
	case "text", "logfmt":
		return format, nil
	case "", "auto":
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return "text", nil
			}
		}
		return "logfmt", nil
	}
	return "", usageError{fmt.Errorf("log format %q: want text, logfmt or auto", format)}
}

// textHandler is the error log for a person: each record is one logfmt line,
// except that a message or attribute of several lines (a Python traceback)
// follows it as its own lines, indented, instead of one line of \n escapes.
type textHandler struct {
	inner slog.Handler // writes the one-line part
	w     io.Writer
	mu    *sync.Mutex // one record's lines stay together
}

func newTextHandler(w io.Writer, opts *slog.HandlerOptions) *textHandler {
	mu := &sync.Mutex{}
	return &textHandler{inner: slog.NewTextHandler(w, opts), w: w, mu: mu}
}

func (h *textHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &textHandler{inner: h.inner.WithAttrs(as), w: h.w, mu: h.mu}
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	return &textHandler{inner: h.inner.WithGroup(name), w: h.w, mu: h.mu}
}

func (h *textHandler) Handle(ctx context.Context, r slog.Record) error {
	var blocks []string
	msg := r.Message
	if first, rest, ok := strings.Cut(strings.TrimRight(msg, "\n"), "\n"); ok {
		msg = first
		blocks = append(blocks, rest)
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindString && strings.Contains(strings.TrimRight(a.Value.String(), "\n"), "\n") {
			blocks = append(blocks, a.Key+":\n"+strings.TrimRight(a.Value.String(), "\n"))
			return true
		}
		out.AddAttrs(a)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.inner.Handle(ctx, out); err != nil {
		return err
	}
	if len(blocks) == 0 {
		return nil
	}
	var b strings.Builder
	for _, blk := range blocks {
		for _, line := range strings.Split(blk, "\n") {
			b.WriteString("    ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(h.w, b.String())
	return err
}

// setLogFormat resolves the format the flag names and exports it, so that
// this process's logger and its pool workers (which inherit the environment)
// use it alike.
func setLogFormat(flagValue string, stderr io.Writer) error {
	f, err := logFormat(flagValue, stderr)
	if err != nil {
		return err
	}
	return os.Setenv(logFormatEnv, f)
}
