package cli

import (
	"bytes"
	"strings"
	"testing"
)

const traceback = "Traceback (most recent call last):\n  File \"app.py\", line 3, in application\n    1/0\nZeroDivisionError: division by zero\n"

// In the text format a traceback reads as a person reads it: its own lines,
// indented under the record; logfmt keeps one escaped line per record.
func TestLogFormats(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Error("app error\n"+traceback, "uri", "/x")
	log.Error("request failed", "traceback", traceback, "uri", "/y")
	got := b.String()
	for _, want := range []string{
		"msg=\"app error\" uri=/x\n    Traceback (most recent call last):\n    ",
		"\n    ZeroDivisionError: division by zero\n",
		"msg=\"request failed\" uri=/y\n    traceback:\n    Traceback (most recent call last):\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("text log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, `\n`) {
		t.Errorf("text log has escaped newlines:\n%s", got)
	}

	b.Reset()
	log, _ = newLogger(&b, "info", "logfmt")
	log.Error("app error\n"+traceback, "uri", "/x")
	if n := strings.Count(b.String(), "\n"); n != 1 || !strings.Contains(b.String(), `\nZeroDivisionError`) {
		t.Errorf("logfmt: want one line with escapes, got %q", b.String())
	}

	if _, err := newLogger(&b, "info", "yaml"); err == nil {
		t.Errorf("log format yaml accepted")
	}
	t.Setenv(logFormatEnv, "text")
	if f, _ := logFormat("auto", &b); f != "text" {
		t.Errorf("auto with %s=text: %s", logFormatEnv, f)
	}
}
