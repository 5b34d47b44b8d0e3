package cli

import "os"

// configHelp is the help text of the -c flag of the commands that read a
// wisp.toml (serve, install, remove, list, check, and those that talk to a
// running server).
const configHelp = "configuration file (default: $WISP_CONFIG, else ./wisp.toml, else /etc/wisp/wisp.toml)"

// systemConfig is the packaged service's configuration (dist/deb).
const systemConfig = "/etc/wisp/wisp.toml"

// findConfig is the configuration file a command reads when -c (or
// WISP_CONFIG, which sets -c) gives none, the way systemd-era tools look:
// ./wisp.toml when it exists, else /etc/wisp/wisp.toml when it exists, else
// ./wisp.toml (which `wisp install` creates). A path given is kept as it is.
func findConfig(given string) string { return findConfigIn(given, systemConfig) }

// findConfigIn is findConfig with the system-wide file at sys.
func findConfigIn(given, sys string) string {
	if given != "" {
		return given
	}
	if _, err := os.Stat("wisp.toml"); err == nil {
		return "wisp.toml"
	}
	if _, err := os.Stat(sys); err == nil {
		return sys
	}
	return "wisp.toml"
}
