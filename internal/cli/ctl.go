package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/poolstate"
	"wisp/internal/trace"
)

// find returns the control socket of the running server the flags name.
func (cf *controlFlags) find() (string, error) {
	if cf.socket != "" {
		return cf.socket, nil
	}
	cf.config = findConfig(cf.config)
	cfg, err := config.Load(cf.config)
	if err != nil {
		// A file that does not load must not keep the command from the
		// server: `wisp reload` then prints the server's own verdict on it.
		sock, lerr := lenientControlSocket(cf.config)
		if lerr != nil {
			return "", fmt.Errorf("find the control socket: %w (or pass --socket)", err)
		}
		return sock, nil
	}
	return cfg.Server.ControlSocket, nil
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

func newStatusCommand(stdout, stderr io.Writer) *cobra.Command {
	var cf controlFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "show the pools and workers of a running server",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return statusCmd(&cf, stdout) },
	}
	cf.define(c.Flags(), true)
	return c
}

// statusCmd is `wisp status`.
func statusCmd(cf *controlFlags, stdout io.Writer) error {
	sock, err := cf.find()
	if err != nil {
		return err
	}
	var st poolstate.Status
	if err := control.Call(sock, "GET", "/v1/status", nil, &st); err != nil {
		return err
	}
	if cf.json {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		return e.Encode(st)
	}
	fmt.Fprintf(stdout, "wisp pid %d, config %s, build %s\n", st.PID, st.Config, cmp.Or(st.Build, "unknown"))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tSTATE\tWORKER\tPID\tWSTATE\tRSS MB\tREQUESTS\tCONNS\tUPTIME\tBUILD")
	exited := 0
	for _, p := range st.Pools {
		state := string(p.State)
		if p.Reason != "" {
			state += " (" + p.Reason + ")"
		}
		if len(p.Workers) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\n", p.Name, state)
		}
		for _, w := range p.Workers {
			build := cmp.Or(w.Build, "-")
			if w.Build != "" && st.Build != "" && w.Build != st.Build {
				build += " (not the supervisor's)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%.1f\t%d\t%d\t%s\t%s\n", p.Name, state, w.ID, w.PID, w.State, w.RSSMB, w.Requests, w.Conns, w.Uptime, build)
		}
		exited += len(p.Exited)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if exited > 0 {
		// the workers that are gone, apart: they no longer serve
		fmt.Fprintln(stdout, "\nrecently exited:")
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  POOL\tWORKER\tPID\tSTATE\tREQUESTS\tWHEN\tHOW")
		for _, p := range st.Pools {
			for _, w := range p.Exited {
				fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%d\t%s\t%s\n", p.Name, w.ID, w.PID, w.State, w.Requests, strings.TrimPrefix(w.Uptime, "exited "), w.How)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, p := range st.Pools {
		if p.ConfigNote != "" {
			fmt.Fprintf(stdout, "pool %s: config: %s\n", p.Name, p.ConfigNote)
		}
	}
	return nil
}

func newPoolCommand(verb, short string, stdout, stderr io.Writer) *cobra.Command {
	var cf controlFlags
	c := &cobra.Command{
		Use:   verb + " POOL",
		Short: short,
		Args:  exactArgs(1, "POOL"),
		RunE: func(c *cobra.Command, args []string) error {
			sock, err := cf.find()
			if err != nil {
				return err
			}
			if err := control.Call(sock, "POST", "/v1/pools/"+args[0]+"/"+verb, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s: ok\n", verb, args[0])
			return nil
		},
	}
	cf.define(c.Flags(), false)
	return c
}

func newReloadCommand(stdout, stderr io.Writer) *cobra.Command {
	var cf controlFlags
	c := &cobra.Command{
		Use:   "reload",
		Short: "apply the changed configuration file to a running server, and wait for the verdict",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			sock, err := cf.find()
			if err != nil {
				return err
			}
			if err := control.Call(sock, "POST", "/v1/reload", nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "reload: ok")
			return nil
		},
	}
	cf.define(c.Flags(), false)
	return c
}

// exactArgs wants n positional arguments, named in the message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s, got %d argument(s)", c.Name(), what, len(args))}
		}
		return nil
	}
}

// newProbeCommand is `wisp probe healthz|readyz`: a health check for a
// container (Docker HEALTHCHECK, a Kubernetes exec probe) that asks the
// admin listener of the wisp in the same container. It reads --admin and
// --admin-token from WISP_ADMIN and WISP_ADMIN_TOKEN, as the server does.
func newProbeCommand(stdout, stderr io.Writer) *cobra.Command {
	var addr, token string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "probe healthz|readyz",
		Short: "ask the admin listener whether the server is healthy or ready (exit 0) or not (exit 1)",
		Args:  exactArgs(1, "healthz or readyz"),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] != "healthz" && args[0] != "readyz" {
				return usageError{fmt.Errorf("probe %q: want healthz or readyz", args[0])}
			}
			if addr == "" {
				return usageError{fmt.Errorf("probe: no admin listener: give --admin ADDR (or WISP_ADMIN)")}
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return usageError{fmt.Errorf("--admin %q: want host:port", addr)}
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1" // listening on every interface: ask on loopback
			}
			req, _ := http.NewRequest("GET", "http://"+net.JoinHostPort(host, port)+"/"+args[0], nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := (&http.Client{Timeout: timeout}).Do(req)
			if err != nil {
				return fmt.Errorf("probe %s: %w", args[0], err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			stdout.Write(body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("probe %s: %s", args[0], resp.Status)
			}
			return nil
		},
	}
	c.Flags().StringVar(&addr, "admin", "", "the server's admin listener, host:port")
	c.Flags().StringVar(&token, "admin-token", "", "its bearer token")
	newDuration(c.Flags(), &timeout, "timeout", "", 5*time.Second, "time to wait for the answer")
	return c
}

// newTraceCommand is `wisp trace`: the successor of win32traceutil, a live
// stream of what the apps write and one line per request.
func newTraceCommand(stdout, stderr io.Writer) *cobra.Command {
	var cf controlFlags
	var site, vdir, pool string
	var since time.Duration
	c := &cobra.Command{
		Use:   "trace [--site S] [--vdir V] [--pool P] [--since DUR] [--json]",
		Short: "show, live, everything the apps print or log and one line per request (win32traceutil's successor)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			sock, err := cf.find()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"site": site, "vdir": vdir, "pool": pool} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if since > 0 {
				q.Set("since", since.String())
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return control.Stream(ctx, sock, "/v1/trace?"+q.Encode(), func(raw []byte) error {
				if cf.json {
					_, err := fmt.Fprintf(stdout, "%s\n", raw)
					return err
				}
				var l trace.Line
				if err := json.Unmarshal(raw, &l); err != nil {
					return err
				}
				_, err := fmt.Fprintln(stdout, formatTraceLine(l))
				return err
			})
		},
	}
	cf.define(c.Flags(), true)
	c.Flags().StringVar(&site, "site", "", "only this site")
	c.Flags().StringVar(&vdir, "vdir", "", "only this virtual directory (its path, such as /wsgi-test)")
	c.Flags().StringVar(&pool, "pool", "", "only this pool")
	newDuration(c.Flags(), &since, "since", "", 0, "first show the recent lines of this long ago (each worker keeps its last 4096)")
	return c
}

// formatTraceLine is a trace line for a person: time, where, request id,
// then the text (a request line is marked with its method).
func formatTraceLine(l trace.Line) string {
	where := l.Pool
	if where == "" {
		where = "wisp"
	}
	where += "[" + strconv.Itoa(l.PID) + "]"
	if l.Dropped > 0 {
		return fmt.Sprintf("%s %s %s", l.Time.Local().Format("15:04:05.000"), where, l.Text)
	}
	rid := l.Request
	if rid == "" {
		rid = "-"
	}
	stream := l.Stream
	if stream == "request" {
		stream = "=>"
	}
	return fmt.Sprintf("%s %s %s %s %s", l.Time.Local().Format("15:04:05.000"), where, rid, stream, l.Text)
}
