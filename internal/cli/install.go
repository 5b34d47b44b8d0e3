package cli

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"wisp/internal/config"
	"wisp/internal/control"
	"wisp/internal/install"
	"wisp/internal/listen"
)

// installFlags are the flags of `wisp install` and `wisp remove`.
type installFlags struct {
	config, site, vdir, pool, description, binding, python, socket, chdir string
	pythonpath                                                            []string
	processes, threads                                                    int
	changed                                                               map[string]bool
}

func (f *installFlags) define(fs *pflag.FlagSet, forInstall bool) {
	fs.StringVarP(&f.config, "config", "c", "", "the main configuration file; drop-ins go to wisp.d beside it (default: $WISP_CONFIG, else ./wisp.toml, else /etc/wisp/wisp.toml)")
	fs.StringVar(&f.site, "site", "", "the site (default: the script's --server, else \"default\")")
	fs.StringVar(&f.site, "server", "", "the same as --site (the seed's: python myapp.py install --server=MySite)")
	fs.StringVar(&f.vdir, "vdir", "", "the virtual directory: /path, or / for the root (default: the script's VirtualDirParameters Name, else /)")
	fs.StringVar(&f.socket, "socket", "", "control socket of the running server (default: the configuration's control_socket)")
	if !forInstall {
		return
	}
	fs.StringVar(&f.pool, "pool", "", "the pool that runs the app, created when missing (default: the pool of the site's root vdir, as IIS gives a new virtual directory its site's application pool; for a new site \"default\")")
	fs.StringVar(&f.description, "description", "", "what the vdir is (default: the script's Description)")
	fs.StringVar(&f.binding, "binding", install.DefaultBinding, "the binding of a site the install creates")
	fs.StringVar(&f.python, "python", "", "a pool the install creates: its Python interpreter or virtualenv (default python3 on PATH)")
	fs.StringVar(&f.chdir, "chdir", "", "a pool the install creates: the folder its workers start in (default: the project root of an app file inside a package, else the configuration's folder)")
	fs.StringArrayVar(&f.pythonpath, "pythonpath", nil, "a pool the install creates: a folder to prepend to sys.path (repeatable; default: the project root of an app file inside a package, as mod_wsgi's python-path)")
	fs.IntVar(&f.processes, "processes", 1, "a pool the install creates: its worker processes")
	fs.IntVar(&f.threads, "threads", 4, "a pool the install creates: its Python threads per process")
}

func newInstallCommand(stdout, stderr io.Writer) *cobra.Command {
	f := &installFlags{}
	c := &cobra.Command{
		Use:   "install TARGET [--site NAME | --server NAME] [--vdir PATH|/] [--pool NAME] [--description TEXT] [-c wisp.toml]",
		Short: "install an app into a site's virtual directory, live (the seed's 'python myapp.py install')",
		Long: `Install TARGET (module:callable, app.py, config:app.ini[#name]) at a site's
virtual directory. The site and the pool are created when missing. Installing
again at the same site and vdir replaces the earlier install.

For an ISAPI-WSGI script with no --vdir, wisp runs the script's install block
(its __main__, with an isapi.install shim) and takes its parameters:
VirtualDirParameters(Name="wsgi-test") installs at /wsgi-test, Name="/" at
the root. The app is imported in a throwaway worker of its pool before
anything is written; then a drop-in file is written to wisp.d/ beside the
main file (which is never rewritten), and a running server applies it and
answers for the new vdir, or the install is rolled back and exits 1.`,
		Args: exactArgs(1, "TARGET"),
		RunE: func(c *cobra.Command, args []string) error {
			if f.processes < 1 || f.threads < 1 {
				return usageError{errors.New("--processes and --threads: want 1 or more")}
			}
			if listen.Check(f.binding) != nil {
				return usageError{fmt.Errorf("--binding %q: want host:port or unix:PATH", f.binding)}
			}
			f.changed = changedFlags(c.Flags())
			return runInstall(f, args[0], "install", stdout, stderr)
		},
	}
	f.define(c.Flags(), true)
	return c
}

func newRemoveCommand(stdout, stderr io.Writer) *cobra.Command {
	f := &installFlags{}
	c := &cobra.Command{
		Use:   "remove (--site NAME --vdir PATH | SCRIPT.py [--server NAME]) [-c wisp.toml]",
		Short: "take an install away, live",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 0 && f.vdir == "") {
				return usageError{errors.New("remove takes --site NAME --vdir PATH, or an ISAPI-WSGI script")}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			return runInstall(f, target, "remove", stdout, stderr)
		},
	}
	f.define(c.Flags(), false)
	return c
}

// isScript reports whether target names a Python file (an ISAPI-WSGI
// script's install block may give its parameters).
func isScript(target string) bool {
	t, _, _ := strings.Cut(target, ":")
	return strings.HasSuffix(t, ".py")
}

// hasInstallBlock reports whether a script carries the seed's install
// boilerplate (isapi.install's HandleCommandLine): only then is its
// __main__ run, since another script's __main__ may start a server of its
// own (app.run()).
func hasInstallBlock(target string) bool {
	file, _, _ := strings.Cut(target, ":")
	b, err := os.ReadFile(file)
	return err == nil && bytes.Contains(b, []byte("HandleCommandLine"))
}

// absTarget makes a file target absolute (the server may run elsewhere).
func absTarget(target string) string {
	if rest, ok := strings.CutPrefix(target, "config:"); ok {
		path, name, hasName := strings.Cut(rest, "#")
		abs := absPath(path)
		if hasName {
			return "config:" + abs + "#" + name
		}
		return "config:" + abs
	}
	if isScript(target) {
		file, expr, hasExpr := strings.Cut(target, ":")
		if hasExpr {
			return absPath(file) + ":" + expr
		}
		return absPath(file)
	}
	return target
}

// runInstall is `wisp install` and `wisp remove`.
func runInstall(f *installFlags, target, verb string, stdout, stderr io.Writer) (err error) {
	f.config = findConfig(f.config)
	cfgPath := absPath(f.config)
	if _, serr := os.Stat(cfgPath); os.IsNotExist(serr) && verb == "install" {
		// A first install makes the main file: the server's settings, which a
		// person may edit; the installs themselves go to wisp.d/.
		text := "# wisp.toml, made by the first wisp install: [server] settings go here;\n" +
			"# each install is a drop-in of wisp.d/ (wisp list shows them).\n[server]\ncontrol_socket = \"wisp.sock\"\n"
		if werr := os.WriteFile(cfgPath, []byte(text), 0o644); werr != nil {
			return fmt.Errorf("make %s: %w", cfgPath, werr)
		}
		defer func() { // err is the result

			if err != nil {
				os.Remove(cfgPath) // nothing was installed: no file either
			} else {
				fmt.Fprintf(stdout, "%s created\n", cfgPath)
			}
		}()
	}
	cur, _ := config.Load(cfgPath) // nil when missing or broken: Install reports it
	vdirs := []install.VdirParam{{Name: f.vdir, Description: f.description}}
	site := f.site
	if target != "" && f.vdir == "" && isScript(target) && hasInstallBlock(target) {
		params, err := scriptParams(cur, f, absTarget(target), verb, stderr)
		if err != nil {
			return err
		}
		if len(params.Vdirs) == 0 {
			return fmt.Errorf("%s: its install block names no virtual directory (params.VirtualDirs is empty)", target)
		}
		vdirs = params.Vdirs
		if site == "" {
			site = params.Server
		}
	}
	if site == "" {
		site = "default"
	}
	pool := f.pool
	if pool == "" {
		pool = sitePool(cur, site)
	}
	var changes []*install.Change
	for _, v := range vdirs {
		vdir := "/" + strings.Trim(v.Name, "/")
		var ch *install.Change
		var err error
		if verb == "remove" {
			ch, err = install.Remove(cfgPath, site, vdir)
		} else {
			desc := f.description
			if desc == "" {
				desc = v.Description
			}
			r := install.Request{Config: cfgPath, Site: site, Vdir: vdir, Pool: pool, App: absTarget(target),
				Description: desc, Binding: f.binding, PoolKeys: map[string]any{}}
			if f.changed["processes"] {
				r.PoolKeys["processes"] = int64(f.processes)
			}
			if f.changed["threads"] {
				r.PoolKeys["threads"] = int64(f.threads)
			}
			if f.python != "" {
				r.PoolKeys["python"] = absIfPath(f.python)
			}
			chdir, pypath := "", []string{}
			if f.chdir != "" {
				chdir = absPath(f.chdir)
			}
			for _, d := range f.pythonpath {
				pypath = append(pypath, absPath(d))
			}
			if root := projectRoot(r.App); root != "" && (cur == nil || cur.Pools[pool] == nil) {
				// Django's layout: mysite/mysite/wsgi.py imports mysite.settings
				if chdir == "" {
					chdir = root
				}
				if !slices.Contains(pypath, root) {
					pypath = append(pypath, root)
				}
			}
			if chdir != "" {
				r.PoolKeys["chdir"] = chdir
			}
			if len(pypath) > 0 {
				r.PoolKeys["pythonpath"] = anyList(pypath)
			}
			if err = checkInstall(cur, f, r, stdout, stderr); err == nil {
				ch, err = install.Install(r)
			}
		}
		if err != nil {
			return err
		}
		changes = append(changes, ch)
	}
	for _, ch := range changes {
		if err := ch.Apply(); err != nil {
			rollback(changes)
			return fmt.Errorf("write the drop-ins: %w", err)
		}
	}
	nc, err := config.Load(cfgPath)
	if err != nil {
		rollback(changes)
		return fmt.Errorf("the configuration with this %s does not load (nothing changed):\n%w", verb, err)
	}
	for _, ch := range changes {
		for _, n := range ch.Notes {
			fmt.Fprintln(stdout, n)
		}
	}
	sock := f.socket
	if sock == "" {
		sock = nc.Server.ControlSocket
	}
	if !control.Reachable(sock) {
		fmt.Fprintf(stdout, "no server answers on %s: the %s takes effect at the next start\n", sock, verb)
		return nil
	}
	if err := control.Call(sock, "POST", "/v1/reload", nil, nil); err != nil {
		rollback(changes)
		if rerr := control.Call(sock, "POST", "/v1/reload", nil, nil); rerr != nil {
			fmt.Fprintf(stderr, "wisp: putting the previous configuration back also failed: %v\n", rerr)
		}
		return fmt.Errorf("the running server refused the %s, which is rolled back: %w", verb, err)
	}
	if verb == "install" {
		var failed []string
		for _, v := range vdirs {
			vdir := "/" + strings.Trim(v.Name, "/")
			url, status, err := probeVdir(nc, site, vdir)
			switch {
			case errors.Is(err, errNoTCPBinding):
				fmt.Fprintf(stdout, "applied; %s%s: %v\n", site, vdir, err)
			case err != nil:
				failed = append(failed, fmt.Sprintf("%s: %v", url, err))
			case status >= 500:
				failed = append(failed, fmt.Sprintf("%s answers %d", url, status))
			default:
				fmt.Fprintf(stdout, "applied: %s answers %d\n", url, status)
			}
		}
		if len(failed) > 0 {
			// DESIGN.md: a change whose workers fail is rolled back
			rollback(changes)
			if rerr := control.Call(sock, "POST", "/v1/reload", nil, nil); rerr != nil {
				fmt.Fprintf(stderr, "wisp: putting the previous configuration back also failed: %v\n", rerr)
			}
			return fmt.Errorf("the %s is rolled back: %s", verb, strings.Join(failed, "; "))
		}
	} else {
		fmt.Fprintln(stdout, "applied")
	}
	return nil
}

func rollback(changes []*install.Change) {
	for i := len(changes) - 1; i >= 0; i-- {
		changes[i].Rollback()
	}
}

// probeVdir asks the new vdir through the site's first TCP binding.
func probeVdir(cfg *config.Config, site, vdir string) (string, int, error) {
	for _, st := range cfg.Sites {
		if st.Name != site {
			continue
		}
		for _, b := range st.Bindings {
			if _, ok := listen.UnixPath(b); ok {
				continue
			}
			host, port, err := net.SplitHostPort(b)
			if err != nil {
				continue
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1"
			}
			url := "http://" + net.JoinHostPort(host, port) + strings.TrimSuffix(vdir, "/") + "/"
			c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(url)
			if err != nil {
				return url, 0, err
			}
			resp.Body.Close()
			return url, resp.StatusCode, nil
		}
	}
	return "", 0, errNoTCPBinding
}

// errNoTCPBinding: a site reached only on unix sockets is not probed.
var errNoTCPBinding = errors.New("no TCP binding to ask it on")

// sitePool is the pool a new vdir of site runs in when --pool is not
// given: the pool of the site's root vdir (else of its first app), as IIS
// gives a new virtual directory its site's application pool; "default"
// for a new site.
func sitePool(cur *config.Config, site string) string {
	if cur != nil {
		for _, st := range cur.Sites {
			if st.Name != site {
				continue
			}
			for _, v := range st.Vdirs {
				if v.Path == "/" && v.App != "" {
					return v.Pool
				}
			}
			for _, v := range st.Vdirs {
				if v.App != "" {
					return v.Pool
				}
			}
		}
	}
	return "default"
}

// projectRoot is the folder an app file inside a package is imported from:
// the folder above its top package (walking up while a folder has an
// __init__.py), as Django's layout (mysite/mysite/wsgi.py imports
// mysite.settings) and mod_wsgi's python-path imply; "" for a file that is
// in no package, or a target that is no file.
func projectRoot(target string) string {
	if !isScript(target) {
		return ""
	}
	file, _, _ := strings.Cut(target, ":")
	dir := filepath.Dir(file)
	root := ""
	for {
		if _, err := os.Stat(filepath.Join(dir, "__init__.py")); err != nil {
			break
		}
		root = filepath.Dir(dir)
		if root == dir {
			break
		}
		dir = root
	}
	return root
}

// poolSettings are the interpreter, folder, paths, environment and user an
// app of pool runs with: the pool's when it exists (in the main file or a
// drop-in, with or without a site yet), else those of the pool the install
// creates (keys: its settings from the flags; its folder by default the
// config's).
func poolSettings(cur *config.Config, f *installFlags, pool string, keys map[string]any) *config.Pool {
	if cur != nil {
		if p := cur.Pools[pool]; p != nil {
			return p
		}
	}
	p := &config.Pool{Python: absIfPath(f.python), Chdir: filepath.Dir(absPath(f.config))}
	if d, ok := keys["chdir"].(string); ok {
		p.Chdir = d
	}
	if ds, ok := keys["pythonpath"].([]any); ok {
		for _, d := range ds {
			p.PythonPath = append(p.PythonPath, d.(string))
		}
	}
	return p
}

// checkInstall imports the app in a throwaway process of its pool's
// interpreter and environment, before anything is written.
func checkInstall(cur *config.Config, f *installFlags, r install.Request, stdout, stderr io.Writer) error {
	p := poolSettings(cur, f, r.Pool, r.PoolKeys)
	out, err := runCheck(p, "--mount", strings.TrimSuffix(r.Vdir, "/")+"="+r.App)
	if err != nil {
		fmt.Fprintf(stderr, "%s does not import; nothing was installed:\n%s\n", r.App, indent(out))
		if root := projectRoot(r.App); root != "" && cur != nil && cur.Pools[r.Pool] != nil &&
			p.Chdir != root && !slices.Contains(p.PythonPath, root) {
			fmt.Fprintf(stderr, "its project root %s is not on the path of pool %s, which exists: install it into a pool of its own (--pool NAME), which gets it\n", root, r.Pool)
		}
		return errSilent
	}
	return nil
}

// probeScript runs an ISAPI-WSGI script's install block (its __main__) in
// wisp's embedded interpreter, with the isapi.install shim recording its
// parameters.
const probeScript = `# wisp install: runs an ISAPI-WSGI script's install block to read its parameters
import os, runpy, sys
_script = %q
sys.argv = [_script] + %s
sys.path.insert(0, os.path.dirname(_script))
try:
    runpy.run_path(_script, init_globals={"sys": sys}, run_name="__main__")
except SystemExit as e:
    if e.code not in (None, 0):
        raise

def application(environ, start_response):
    start_response("204 No Content", [])
    return [b""]
`

// scriptParams reads the parameters of a script's install block.
func scriptParams(cur *config.Config, f *installFlags, script, verb string, stderr io.Writer) (*install.ScriptParams, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	shim, err := install.ShimDir(exe)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "wisp-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	argv := []string{verb}
	if f.site != "" {
		argv = append(argv, "--server="+f.site)
	}
	argvJSON, _ := json.Marshal(argv)
	probe := filepath.Join(tmp, "wisp_install_probe.py")
	if err := os.WriteFile(probe, []byte(fmt.Sprintf(probeScript, script, argvJSON)), 0o644); err != nil {
		return nil, err
	}
	record := filepath.Join(tmp, "params.json")
	pool := f.pool
	if pool == "" {
		pool = sitePool(cur, cmp.Or(f.site, "default"))
	}
	ps := *poolSettings(cur, f, pool, nil)
	ps.User, ps.Group = "", "" // the script's own block, not the app; its record goes to a folder of ours
	out, err := runCheck(&ps, "--pythonpath", shim, "--env", "WISP_INSTALL_RECORD="+record,
		"--chdir", filepath.Dir(script), probe)
	if err != nil {
		fmt.Fprintf(stderr, "%s: its install block failed:\n%s\n", script, indent(out))
		return nil, errSilent
	}
	b, err := os.ReadFile(record)
	if err != nil {
		return nil, fmt.Errorf("%s: its install block did not call isapi.install.HandleCommandLine(params); give --vdir PATH to install it", script)
	}
	var p install.ScriptParams
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func newListCommand(stdout, stderr io.Writer) *cobra.Command {
	var path string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [-c wisp.toml] [--json]",
		Short: "list every site, vdir, app and pool, and the file each comes from",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			entries, err := install.List(findConfig(path))
			if err != nil {
				return err
			}
			if asJSON {
				if entries == nil {
					entries = []install.Entry{}
				}
				e := json.NewEncoder(stdout)
				e.SetIndent("", "  ")
				return e.Encode(entries)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SITE\tBINDINGS\tVDIR\tAPP\tPOOL\tFILE\tDESCRIPTION")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Site, strings.Join(e.Bindings, ","), e.Vdir, e.App, e.Pool, e.File, e.Description)
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "", configHelp)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newCheckCommand(stdout, stderr io.Writer) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "check [-c wisp.toml]",
		Short: "check the configuration (drop-ins included) and import every app in a throwaway worker of its pool",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := config.Load(findConfig(path))
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(stderr, "warning:", w)
			}
			return checkApps(cfg, stdout, stderr)
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "", configHelp)
	return c
}

func newPythonpathCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "pythonpath",
		Short: "print the folder of wisp's isapi.install shim: with it on PYTHONPATH, 'python3 myapp.py install' installs into wisp",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			dir, err := install.ShimDir(exe)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, dir)
			return nil
		},
	}
}
