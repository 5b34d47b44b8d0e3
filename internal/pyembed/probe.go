package pyembed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Interp describes a Python interpreter as it reports itself.
type Interp struct {
	Executable string `json:"executable"` // sys.executable (a venv's bin/python3 for a venv)
	Version    string `json:"version"`    // sys.version
	Hex        int    `json:"hexversion"`
	Prefix     string `json:"prefix"`
	BasePrefix string `json:"base_prefix"`
	LibDir     string `json:"libdir"`
	LibPL      string `json:"libpl"`
	LDLibrary  string `json:"ldlibrary"`
	InstSoname string `json:"instsoname"`
	Shared     int    `json:"shared"`
	Multiarch  string `json:"multiarch"`
	Lib        string `json:"-"` // the libpython shared library to load

	// NoGIL is Py_GIL_DISABLED: a free-threaded build (3.13t).
	NoGIL int `json:"gil_disabled"`
}

const probeScript = `import json, sys, sysconfig
v = sysconfig.get_config_var
print(json.dumps(dict(executable=sys.executable, version=sys.version, hexversion=sys.hexversion,
  prefix=sys.prefix, base_prefix=sys.base_prefix, libdir=v("LIBDIR") or "", libpl=v("LIBPL") or "",
  ldlibrary=v("LDLIBRARY") or "", instsoname=v("INSTSONAME") or "", shared=v("Py_ENABLE_SHARED") or 0,
  multiarch=v("MULTIARCH") or "", gil_disabled=v("Py_GIL_DISABLED") or 0)))`

// Release is the interpreter's version number ("3.11.2").
func (in *Interp) Release() string { return firstWord(in.Version) }

// Probe runs the interpreter named by python (a path, a venv folder, or a command
// on PATH; "" means python3) and finds its libpython.
func Probe(python string) (*Interp, error) {
	if python == "" {
		python = "python3"
	}
	exe := python
	if st, err := os.Stat(python); err == nil && st.IsDir() {
		exe = filepath.Join(python, "bin", "python3")
		if _, err := os.Stat(exe); err != nil {
			return nil, fmt.Errorf("python %q: a folder but not a virtualenv (no bin/python3)", python)
		}
	} else if !strings.ContainsRune(python, '/') {
		p, err := exec.LookPath(python)
		if err != nil {
			return nil, fmt.Errorf("python %q: not found on PATH", python)
		}
		exe = p
	} else if err != nil {
		return nil, fmt.Errorf("python %q: %w", python, errors.Unwrap(err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-I", "-c", probeScript)
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			// the whole error: pyenv, for one, explains itself over several lines
			text := strings.TrimSpace(string(ee.Stderr))
			if len(text) > 4000 {
				text = "..." + text[len(text)-4000:]
			}
			msg += ", saying:\n    " + strings.ReplaceAll(text, "\n", "\n    ")
		}
		return nil, fmt.Errorf("python %q: cannot run it: %s -I -c <probe script>: %s", python, exe, msg)
	}
	var in Interp
	if err := json.Unmarshal(out, &in); err != nil {
		return nil, fmt.Errorf("python %q: unexpected probe output %q", python, lastLine(string(out)))
	}
	if in.Hex < 0x03090000 {
		return nil, fmt.Errorf("python %q: version %s is too old (wisp needs 3.9 or newer)", python, firstWord(in.Version))
	}
	lib, err := in.findLib()
	if err != nil {
		return nil, fmt.Errorf("python %q (%s): %w", python, firstWord(in.Version), err)
	}
	in.Lib = lib
	return &in, nil
}

func (in *Interp) findLib() (string, error) {
	var names []string
	for _, n := range []string{in.InstSoname, in.LDLibrary} {
		if n != "" && !strings.HasSuffix(n, ".a") {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", errors.New("it was built without a shared libpython (Py_ENABLE_SHARED=0); wisp embeds libpython3.X.so, so use an interpreter built with --enable-shared")
	}
	dirs := []string{in.LibDir, in.LibPL, filepath.Join(in.BasePrefix, "lib")}
	if in.Multiarch != "" {
		dirs = append(dirs, filepath.Join(in.BasePrefix, "lib", in.Multiarch))
	}
	for _, n := range names {
		for _, d := range dirs {
			if d == "" {
				continue
			}
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("its shared library %s is not installed in %s", names[0], strings.Join(dirs, ", "))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}
