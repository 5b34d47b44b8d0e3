package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/supervisor"
)

// controlFlags adds the flags that find a running server's control socket.
func controlSocket(args []string, name string, stderr io.Writer, nargs int) (string, []string, bool, error) {
	fs := newFlagSet(name, stderr)
	path := fs.String("c", "wisp.toml", "configuration file of the running server")
	socket := fs.String("socket", "", "control socket (default: the configuration's control_socket)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return "", nil, false, err
	}
	if fs.NArg() != nargs {
		return "", nil, false, usageError{fmt.Errorf("%s takes %d argument(s)", name, nargs)}
	}
	if *socket != "" {
		return *socket, fs.Args(), *asJSON, nil
	}
	cfg, err := config.Load(*path)
	if err != nil {
		// A file that does not load must not keep the command from the
		// server: `wisp reload` then prints the server's own verdict on it.
		sock, lerr := lenientControlSocket(*path)
		if lerr != nil {
			return "", nil, false, fmt.Errorf("find the control socket: %w (or pass --socket)", err)
		}
		return sock, fs.Args(), *asJSON, nil
	}
	return cfg.Server.ControlSocket, fs.Args(), *asJSON, nil
}

// controlSocketRE is a control_socket line of a TOML file.
var controlSocketRE = regexp.MustCompile(`^\s*control_socket\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:#.*)?$`)

// lenientControlSocket finds the control socket in a configuration file that
// does not load: it reads only `control_socket` in `[server]` (else the
// default, wisp.sock), relative to the file's folder as config.Load does.
func lenientControlSocket(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sock := "wisp.sock"
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			section = strings.Trim(strings.SplitN(t, "#", 2)[0], "[] \t")
			continue
		}
		if section != "server" {
			continue
		}
		if m := controlSocketRE.FindStringSubmatch(line); m != nil {
			if m[1] != "" {
				if u, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
					sock = u
				}
			} else if m[2] != "" {
				sock = m[2]
			}
		}
	}
	if !filepath.IsAbs(sock) {
		abs, err := filepath.Abs(filepath.Join(filepath.Dir(path), sock))
		if err != nil {
			return "", err
		}
		sock = abs
	}
	return filepath.Clean(sock), nil
}

// statusCmd is `wisp status`.
func statusCmd(args []string, stdout, stderr io.Writer) error {
	sock, _, asJSON, err := controlSocket(args, "status", stderr, 0)
	if err != nil {
		return err
	}
	var st supervisor.Status
	if err := control.Call(sock, "GET", "/v1/status", &st); err != nil {
		return err
	}
	if asJSON {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(st)
	}
	fmt.Fprintf(stdout, "wisp pid %d, config %s\n", st.PID, st.Config)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tSTATE\tWORKER\tPID\tWSTATE\tRSS MB\tREQUESTS\tCONNS\tUPTIME")
	for _, p := range st.Pools {
		state := string(p.State)
		if p.Reason != "" {
			state += " (" + p.Reason + ")"
		}
		if len(p.Workers) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", p.Name, state)
		}
		for _, w := range append(p.Workers, p.Exited...) {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.1f\t%d\t%d\t%s\n", p.Name, state, w.ID, w.PID, w.State, w.RSSMB, w.Requests, w.Conns, w.Uptime)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range st.Pools {
		if p.ConfigNote != "" {
			fmt.Fprintf(stdout, "pool %s: config: %s\n", p.Name, p.ConfigNote)
		}
	}
	return nil
}

// poolCmd is `wisp recycle POOL` and `wisp start POOL`.
func poolCmd(verb string, args []string, stdout, stderr io.Writer) error {
	sock, rest, _, err := controlSocket(args, verb, stderr, 1)
	if err != nil {
		return err
	}
	if err := control.Call(sock, "POST", "/v1/pools/"+rest[0]+"/"+verb, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s: ok\n", verb, rest[0])
	return nil
}

// reloadCmd is `wisp reload`.
func reloadCmd(args []string, stdout, stderr io.Writer) error {
	sock, _, _, err := controlSocket(args, "reload", stderr, 0)
	if err != nil {
		return err
	}
	if err := control.Call(sock, "POST", "/v1/reload", nil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "reload: ok")
	return nil
}
