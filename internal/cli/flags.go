package cli

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"wisp/internal/config"
)

// Flags come from three places. The order, highest first:
//
//  1. the command line (GNU style, anywhere on the line: `wisp run app:app -w 2`);
//  2. the environment: WISP_ and the flag's name in capitals with '_' for
//     '-' (WISP_BIND, WISP_WORKERS, WISP_MAX_REQUESTS); a gunicorn alias
//     works as well as wisp's own name; a repeatable flag takes a
//     comma-separated list (WISP_BIND=127.0.0.1:8000,unix:/run/app.sock);
//  3. the configuration file given with -c/--config (wisp run), then
//     wisp's defaults.

// flagAliases are other names of a flag, gunicorn's where its meaning is the
// same: `--workers 2` is `--processes 2`.
var flagAliases = map[string][]string{
	"processes":  {"workers"},
	"access-log": {"access-logfile"},
}

// canonicalFlag maps an alias to the flag's own name.
var canonicalFlag = func() map[string]string {
	m := map[string]string{}
	for name, as := range flagAliases {
		for _, a := range as {
			m[a] = name
		}
	}
	return m
}()

// normalizeFlag makes pflag accept every alias of a flag as the flag itself.
func normalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if c, ok := canonicalFlag[name]; ok {
		return pflag.NormalizedName(c)
	}
	return pflag.NormalizedName(name)
}

// envName is the environment variable of a flag name.
func envName(flag string) string {
	return "WISP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnvFlags are flags the environment does not set: asking for help, or
// for an action instead of a server, belongs on the command line.
var noEnvFlags = map[string]bool{"help": true, "version": true, "check-config": true, "print-config": true}

// applyEnv sets every flag that the command line left unset from its
// environment variable (its own name's, else an alias's). A bad value is an
// error that names the variable and the accepted form.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || noEnvFlags[f.Name] {
			return
		}
		names := append([]string{f.Name}, flagAliases[f.Name]...)
		for _, n := range names {
			v := getenv(envName(n))
			if v == "" { // unset, or set empty: both leave the flag alone
				continue
			}
			vals := []string{v}
			if isRepeatable(f) {
				vals = splitList(v)
			}
			for _, one := range vals {
				if err := fs.Set(f.Name, one); err != nil {
					errs = append(errs, fmt.Sprintf("%s=%s: %s", envName(n), v, valueProblem(f, err)))
					return
				}
			}
			return
		}
	})
	if len(errs) > 0 {
		return usageError{errors.New(strings.Join(errs, "\n  "))}
	}
	return nil
}

func isRepeatable(f *pflag.Flag) bool {
	t := f.Value.Type()
	return strings.HasSuffix(t, "Array") || strings.HasSuffix(t, "Slice") || t == "list"
}

// splitList splits a comma-separated environment value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// valueProblem words a flag value pflag could not parse: the accepted form,
// instead of strconv's message.
func valueProblem(f *pflag.Flag, err error) string {
	if r, ok := runFlagRules[f.Name]; ok {
		return "want " + r.want
	}
	switch f.Value.Type() {
	case "int", "int64":
		return "want a whole number"
	case "bool":
		return "want true or false"
	case "duration":
		return "want a duration such as 30s, 5m or 1h30m, or a number of seconds"
	}
	return err.Error()
}

// flagError rewrites pflag's parse errors so that they name the flag and the
// accepted form (pflag's own words name strconv's function instead).
func flagError(fs *pflag.FlagSet, err error) error {
	msg := err.Error()
	// invalid argument "abc" for "-t, --timeout" flag: ...
	if strings.HasPrefix(msg, "invalid argument ") {
		if i := strings.Index(msg, "--"); i >= 0 {
			name := msg[i+2:]
			if j := strings.IndexByte(name, '"'); j >= 0 {
				name = name[:j]
			}
			if f := fs.Lookup(name); f != nil {
				val := strings.TrimPrefix(msg, "invalid argument ")
				if j := strings.Index(val, " for "); j >= 0 {
					val = val[:j]
				}
				if u, err := strconv.Unquote(val); err == nil {
					val = u
				}
				return usageError{fmt.Errorf("--%s %s: %s", name, val, valueProblem(f, err))}
			}
		}
	}
	if strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand") {
		return usageError{fmt.Errorf("%s (see '%s --help' for the flags)", msg, "wisp "+fs.Name())}
	}
	return usageError{err}
}

// durationValue is a duration flag that also takes a bare number of seconds,
// as gunicorn's flags do (`-t 30` is 30s, `-t 0.5` half a second).
type durationValue time.Duration

func newDuration(fs *pflag.FlagSet, p *time.Duration, name, short string, def time.Duration, usage string) {
	*p = def
	fs.VarP((*durationValue)(p), name, short, usage)
}

func (d *durationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f > float64(1<<62)/1e9 || f < -float64(1<<62)/1e9 {
			return fmt.Errorf("out of range")
		}
		*d = durationValue(time.Duration(f * float64(time.Second)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Type() string   { return "duration" }

// sizeValue is a size flag in bytes that also takes a unit, as wisp.toml
// does ("64MiB", "1GiB", "10MB").
type sizeValue int64

func newSize(fs *pflag.FlagSet, p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var((*sizeValue)(p), name, usage)
}

func (s *sizeValue) Set(v string) error {
	n, err := config.ParseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

func (s *sizeValue) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeValue) Type() string   { return "size" }

// flagInt64 is the value of a numeric, size or duration flag (durations in
// nanoseconds), for checking it against its rule.
func flagInt64(f *pflag.Flag) (int64, bool) {
	switch v := f.Value.(type) {
	case *durationValue:
		return int64(*v), true
	case *sizeValue:
		return int64(*v), true
	}
	switch f.Value.Type() {
	case "int", "int64":
		n, err := strconv.ParseInt(f.Value.String(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// changedFlags lists the flags the command line or the environment set.
func changedFlags(fs *pflag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
	return set
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// envGetter is os.Getenv; tests replace it.
var envGetter = os.Getenv
