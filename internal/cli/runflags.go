package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// poolOnlyFlags are the `wisp run` flags that only a pool of worker processes
// can apply: in-process there is no worker to recycle, pin or restart.
var poolOnlyFlags = []string{"max-requests", "max-requests-jitter", "max-rss", "max-rss-hard", "max-uptime",
	"pool-idle-timeout", "start-timeout", "cpu-affinity", "sched-policy", "rapid-fail", "rapid-fail-max",
	"rapid-fail-window"}

// flagRule is what one numeric or duration flag accepts.
type flagRule struct {
	min  int64  // the smallest value (durations: in nanoseconds)
	want string // the accepted form, for the message
}

// runFlagRules bound the numeric and duration flags of `wisp run`. A flag
// missing here accepts any value its type parses.
var runFlagRules = map[string]flagRule{
	"threads":             {1, "a number of Python threads, 1 or more"},
	"processes":           {0, "a number of worker processes, 0 (in this process) or more"},
	"queue":               {1, "a number of waiting requests, 1 or more"},
	"max-body":            {1, "a size, 1 byte or more, in bytes or with a unit (64MiB, 1GiB, 10MB)"},
	"mem-body":            {1, "a size, 1 byte or more, in bytes or with a unit (64MiB, 1GiB, 10MB)"},
	"max-header-bytes":    {1024, "a size in bytes, 1024 or more"},
	"read-header-timeout": {1, "a duration above 0, such as 10s"},
	"read-timeout":        {1, "a duration above 0, such as 120s"},
	"write-timeout":       {1, "a duration above 0, such as 60s"},
	"idle-timeout":        {1, "a duration above 0, such as 60s"},
	"graceful-timeout":    {0, "a duration, 0 or more, such as 30s"},
	"drain-delay":         {0, "a duration, 0 or more, such as 5s"},
	"timeout":             {0, "a duration, 0 (none) or more, such as 30s or 30 (seconds)"},
	"min-write-rate":      {0, "bytes per second, 0 (no minimum) or more"},
	"max-spill":           {1, "a size, 1 byte or more, in bytes or with a unit (64MiB, 1GiB, 10MB)"},
	"max-stuck-threads":   {0, "a number of threads, 0 (as many as --threads) or more"},
	"max-requests":        {0, "a number of requests, 0 (never) or more"},
	"max-requests-jitter": {0, "a number of requests, 0 or more"},
	"max-rss":             {0, "a size in MB, 0 (never) or more"},
	"max-rss-hard":        {0, "a size in MB, 0 (never) or more"},
	"max-uptime":          {0, "a duration, 0 (never) or more, such as 24h"},
	"pool-idle-timeout":   {0, "a duration, 0 (never) or more, such as 10m"},
	"start-timeout":       {1, "a duration above 0, such as 60s"},
	"rapid-fail-max":      {1, "a number of crashes, 1 or more"},
	"rapid-fail-window":   {1, "a duration above 0, such as 5m"},

	"websocket-max-message":   {1, "a size, 1 byte or more, in bytes or with a unit (64KiB, 16MiB)"},
	"websocket-ping-interval": {0, "a duration, 0 (no pings) or more, such as 20s"},
	"websocket-ping-timeout":  {1, "a duration above 0, such as 20s"},
}

// checkRunFlags refuses flag values that cannot work, and pool-only flags
// given for an in-process server, naming the flag and the accepted form.
func checkRunFlags(fs *pflag.FlagSet, pooled bool) error {
	var errs []string
	set := changedFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		r, ok := runFlagRules[f.Name]
		if !ok {
			return
		}
		if v, ok := flagInt64(f); ok && v < r.min {
			errs = append(errs, fmt.Sprintf("--%s %s: want %s", f.Name, f.Value.String(), r.want))
		}
	})
	if !pooled {
		for _, name := range poolOnlyFlags {
			if set[name] {
				errs = append(errs, fmt.Sprintf("--%s applies to a pool of worker processes: add --processes N (in this process there is no worker to recycle or restart)", name))
			}
		}
	}
	if len(errs) > 0 {
		return usageError{fmt.Errorf("%s", strings.Join(errs, "\n  "))}
	}
	return nil
}
