package pyembed

import (
	"fmt"
	"os"
	"strings"
)

// appEnv makes the process environment the app's, before the interpreter
// copies it into os.environ: wisp's own WISP_* variables (its flags, the
// admin token, a worker's spec), read by then, are removed, so that neither
// the app nor the processes it starts sees them; then env (KEY=VALUE: the
// app's `env =` and -e, which may name a WISP_* variable on purpose) is set.
// With cgo, os.Unsetenv and os.Setenv change the C environment Python reads.
func appEnv(env []string) error {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "WISP_") {
			if err := os.Unsetenv(k); err != nil {
				return fmt.Errorf("remove %s from the app's environment: %w", k, err)
			}
		}
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("app environment variable %q: want KEY=VALUE", kv)
		}
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("app environment variable %s: %w", k, err)
		}
	}
	return nil
}
