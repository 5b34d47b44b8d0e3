package e2e

// What wisp ships for deployment (issue 12): the Kubernetes manifests, the
// Dockerfile, the systemd units and the Debian package.

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// yamlDocs parses a YAML file with Debian's python3-yaml (no schema
// validator installs offline) into JSON objects.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	out, err := exec.Command(python, "-c", "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))", path).CombinedOutput()
	if err != nil {
		t.Fatalf("%s does not parse: %v\n%s", path, err, out)
	}
	var docs []map[string]any
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatal(err)
	}
	return docs
}

// dig follows keys (strings for objects, ints for lists) through a JSON value.
func dig(v any, path ...any) any {
	for _, k := range path {
		switch key := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[key]
		case int:
			l, _ := v.([]any)
			if key >= len(l) {
				return nil
			}
			v = l[key]
		}
	}
	return v
}

// The Deployment has the probes on wisp's health endpoints, a drain that
// fits its grace period, resources and scrape annotations; the Service
// selects its pods; every WISP_* variable is a flag wisp knows.
func TestKubernetesManifests(t *testing.T) {
	docs := yamlDocs(t, filepath.Join(repoRoot, "dist/kubernetes/deployment.yaml"))
	byKind := map[string]map[string]any{}
	for _, d := range docs {
		byKind[d["kind"].(string)] = d
	}
	dep, svc := byKind["Deployment"], byKind["Service"]
	if dep == nil || svc == nil || byKind["PodDisruptionBudget"] == nil {
		t.Fatalf("want a Deployment, a Service and a PodDisruptionBudget, got %v", slices.Collect(func(yield func(string) bool) {
			for k := range byKind {
				if !yield(k) {
					return
				}
			}
		}))
	}
	pod := dig(dep, "spec", "template")
	c := dig(pod, "spec", "containers", 0)
	for _, probe := range []struct{ key, endpoint string }{{"livenessProbe", "healthz"}, {"readinessProbe", "readyz"}} {
		cmd, _ := json.Marshal(dig(c, probe.key, "exec", "command"))
		if !strings.Contains(string(cmd), `"probe","`+probe.endpoint+`"`) {
			t.Errorf("%s runs %s, want wisp probe %s", probe.key, cmd, probe.endpoint)
		}
	}
	env := map[string]string{}
	for _, e := range dig(c, "env").([]any) {
		em := e.(map[string]any)
		v, _ := em["value"].(string)
		env[em["name"].(string)] = v
	}
	secs := func(name string) float64 {
		f, err := strconv.ParseFloat(env[name], 64)
		if err != nil {
			t.Errorf("%s=%q: want a number of seconds", name, env[name])
		}
		return f
	}
	grace, _ := dig(pod, "spec", "terminationGracePeriodSeconds").(float64)
	if drain, g := secs("WISP_DRAIN_DELAY"), secs("WISP_GRACEFUL_TIMEOUT"); drain <= 0 || grace < drain+g {
		t.Errorf("terminationGracePeriodSeconds %v < drain delay %v + graceful timeout %v", grace, drain, g)
	}
	if dig(c, "resources", "requests", "cpu") == nil || dig(c, "resources", "limits", "memory") == nil {
		t.Error("no resources")
	}
	if dig(pod, "metadata", "annotations", "prometheus.io/scrape") != "true" {
		t.Error("no scrape annotation")
	}
	labels := dig(pod, "metadata", "labels").(map[string]any)
	for k, v := range dig(svc, "spec", "selector").(map[string]any) {
		if labels[k] != v {
			t.Errorf("the Service selects %s=%v, the pods have %v", k, v, labels[k])
		}
	}
	// every variable is a flag of wisp run (its help names each flag)
	_, help, _ := runWisp(t, 30*time.Second, "", "run", "--help")
	for name := range env {
		flag := "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(name, "WISP_")), "_", "-")
		if flag == "--workers" {
			flag = "--processes"
		}
		if !strings.Contains(help, flag+" ") {
			t.Errorf("%s: wisp run has no flag %s", name, flag)
		}
	}
}

// The Dockerfile builds in a Go image and runs in Debian slim with python3
// and libpython; its WISP_* variables are flags wisp knows.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) != 2 || !strings.HasPrefix(froms[0][1], "golang:1.26") || !strings.Contains(froms[1][1], "slim") {
		t.Errorf("want a golang:1.26 build stage and a Debian slim stage, got %v", froms)
	}
	for _, want := range []string{"python3", "libpython3", "COPY --from=build", "ENTRYPOINT", "wisp\", \"probe\""} {
		if !strings.Contains(text, want) {
			t.Errorf("the Dockerfile has no %q", want)
		}
	}
	_, help, _ := runWisp(t, 30*time.Second, "", "run", "--help")
	for _, m := range regexp.MustCompile(`WISP_([A-Z_]+)=`).FindAllStringSubmatch(text, -1) {
		flag := "--" + strings.ReplaceAll(strings.ToLower(m[1]), "_", "-")
		if flag == "--workers" {
			flag = "--processes"
		}
		if !strings.Contains(help, flag+" ") {
			t.Errorf("WISP_%s: wisp run has no flag %s", m[1], flag)
		}
	}
}

// The unit files are what the package and docs/deploy.md promise:
// Type=notify, reload through SIGHUP, a watchdog, a socket unit, and a stop
// timeout longer than the default graceful timeout.
func TestSystemdUnits(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, "dist/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	svc, sock := read("wisp.service"), read("wisp.socket")
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "User=wisp",
		"ExecStart=/usr/bin/wisp serve -c /etc/wisp/wisp.toml", "RuntimeDirectory=wisp"} {
		if !strings.Contains(svc, want) {
			t.Errorf("wisp.service has no %q", want)
		}
	}
	if m := regexp.MustCompile(`TimeoutStopSec=(\d+)`).FindStringSubmatch(svc); m == nil {
		t.Error("wisp.service has no TimeoutStopSec")
	} else if n, _ := strconv.Atoi(m[1]); n <= 30 {
		t.Errorf("TimeoutStopSec=%d: want more than the 30s graceful timeout", n)
	}
	if systemdAnalyze, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "wisp.service"), []byte(strings.ReplaceAll(svc, "/usr/bin/wisp", wispBin)), 0o644)
		os.WriteFile(filepath.Join(dir, "wisp.socket"), []byte(sock), 0o644)
		out, err := exec.Command(systemdAnalyze, "verify", "--man=no", filepath.Join(dir, "wisp.socket"), filepath.Join(dir, "wisp.service")).CombinedOutput()
		// verify also reports the machine (no wisp user, no systemd running): keep what is about our files
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "wisp.s") && (strings.Contains(line, "Unknown") || strings.Contains(line, "Failed to parse") || strings.Contains(line, "Invalid")) {
				t.Errorf("systemd-analyze verify: %s (%v)", line, err)
			}
		}
	}
	if !strings.Contains(sock, "ListenStream=") || !strings.Contains(sock, "FileDescriptorName=") {
		t.Errorf("wisp.socket:\n%s", sock)
	}
	// a restart of the service must leave the socket open, so that
	// connections wait in its queue: nothing may tie the socket's life to it
	for _, line := range strings.Split(sock, "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(line), "="); ok && (k == "PartOf" || k == "BindsTo" || k == "Requires") {
			t.Errorf("wisp.socket has %q: restarting wisp.service would close the socket and refuse connections", line)
		}
	}
}

// `make deb` builds a package with the contents the issue lists. With
// WISP_E2E_DEB_INSTALL=1, as root, it is installed for real (apt), the
// service is started as systemd would (systemctl where systemd runs, else
// the unit's ExecStart as its User), answers, and is purged.
func TestDebPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nfpm")
	}
	root := repoRoot
	out, err := exec.Command("make", "-C", root, "deb").CombinedOutput()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "dist/out/wisp_*.deb"))
	if len(debs) == 0 {
		t.Fatalf("make deb made no dist/out/wisp_*.deb\n%s", out)
	}
	deb := debs[len(debs)-1]
	contents, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"./usr/bin/wisp", "./lib/systemd/system/wisp.service", "./lib/systemd/system/wisp.socket",
		"./etc/wisp/wisp.toml", "./etc/wisp/wisp.d/", "./usr/share/wisp/examples/hello/app.py"} {
		if !strings.Contains(string(contents), want) {
			t.Errorf("the package has no %s:\n%s", want, contents)
		}
	}
	for _, want := range []string{"./usr/share/doc/wisp/copyright", "./usr/share/doc/wisp/changelog.gz", "./usr/share/man/man1/wisp.1.gz",
		"./usr/share/man/man1/wisp-run.1.gz", "./usr/share/man/man1/wisp-serve.1.gz", "./usr/share/man/man1/wisp-install.1.gz"} {
		if !strings.Contains(string(contents), want) {
			t.Errorf("the package has no %s:\n%s", want, contents)
		}
	}
	// a Debian admin's acceptance: lintian reports no error and no warning
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Errorf("lintian is not installed (make deps installs it): %v", err)
	} else {
		out, _ := exec.Command("lintian", "--tag-display-limit", "0", deb).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
				t.Errorf("lintian: %s", line)
			}
		}
	}
	info, _ := exec.Command("dpkg-deb", "-I", deb).Output()
	for _, want := range []string{"Package: wisp", "Depends: libc6", "python3 (>= 3.9)", "libpython3.11", "postinst", "conffiles"} {
		if !strings.Contains(string(info), want) {
			t.Errorf("the package's control has no %q:\n%s", want, info)
		}
	}
	tmp := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", deb, tmp).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v %s", err, out)
	}
	conf, _ := os.ReadFile(filepath.Join(tmp, "conffiles"))
	post, _ := os.ReadFile(filepath.Join(tmp, "postinst"))
	if !strings.Contains(string(conf), "/etc/wisp/wisp.toml") || !strings.Contains(string(post), "adduser --system") {
		t.Errorf("conffiles %q; postinst creates no system user:\n%s", conf, post)
	}
	// the packaged default configuration checks (its app imports)
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp+"/root").CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v %s", err, out)
	}
	cfgText, _ := os.ReadFile(filepath.Join(tmp, "root/etc/wisp/wisp.toml"))
	// every file the conffile's comments point at is in the package
	for _, ref := range regexp.MustCompile(`/usr/share/doc/wisp/[\w.-]+`).FindAllString(string(cfgText), -1) {
		if _, err := os.Stat(filepath.Join(tmp, "root", ref)); err != nil {
			t.Errorf("/etc/wisp/wisp.toml points at %s, which the package does not have", ref)
		}
	}
	cfgText = []byte(strings.NewReplacer("/usr/share/wisp", tmp+"/root/usr/share/wisp", "/run/wisp/wisp.sock", tmp+"/w.sock",
		"/var/log/wisp/access.log", "off", `python = "/usr/bin/python3"`, `python = "`+python+`"`).Replace(string(cfgText)))
	os.WriteFile(filepath.Join(tmp, "wisp.toml"), cfgText, 0o644)
	if code, out, errOut := runWisp(t, time.Minute, "", "serve", "-c", filepath.Join(tmp, "wisp.toml"), "--check-config"); code != 0 {
		t.Errorf("the packaged wisp.toml does not check: exit %d\n%s%s", code, out, errOut)
	}

	if os.Getenv("WISP_E2E_DEB_INSTALL") != "1" || os.Geteuid() != 0 {
		t.Log("not installed: set WISP_E2E_DEB_INSTALL=1 and run as root (CI does)")
		return
	}
	if c, err := net.Dial("tcp", "127.0.0.1:8000"); err == nil {
		c.Close()
		t.Skip("127.0.0.1:8000 is in use: the packaged configuration's binding")
	}
	install := exec.Command("apt-get", "install", "-y", "-q", deb)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("apt-get install %s: %v\n%s", deb, err, out)
	}
	purged := false
	purge := func() {
		if purged {
			return
		}
		purged = true
		purge := exec.Command("apt-get", "purge", "-y", "-q", "wisp")
		purge.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := purge.CombinedOutput(); err != nil {
			t.Errorf("apt-get purge wisp: %v\n%s", err, out)
		}
	}
	t.Cleanup(purge)
	if out, err := exec.Command("man", "-w", "wisp").CombinedOutput(); err != nil && !strings.Contains(string(out), "wisp.1") {
		if _, lerr := exec.LookPath("man"); lerr == nil {
			t.Errorf("man -w wisp finds no page after install: %v %s", err, out)
		}
	}
	if out, err := exec.Command("id", "wisp").CombinedOutput(); err != nil {
		t.Errorf("no wisp user after install: %s", out)
	}
	var stop func()
	if st, err := os.Stat("/run/systemd/system"); err == nil && st.IsDir() {
		if out, err := exec.Command("systemctl", "start", "wisp").CombinedOutput(); err != nil {
			t.Fatalf("systemctl start wisp: %v\n%s", err, out)
		}
		stop = func() { exec.Command("systemctl", "stop", "wisp").Run() }
	} else {
		// no systemd here: run what the unit runs, as its user, with the
		// runtime folder systemd would make
		os.MkdirAll("/run/wisp", 0o750)
		exec.Command("chown", "wisp:wisp", "/run/wisp").Run()
		cmd := exec.Command("runuser", "-u", "wisp", "--", "/usr/bin/wisp", "serve", "-c", "/etc/wisp/wisp.toml")
		cmd.Dir = "/var/lib/wisp"
		var errBuf syncBuffer
		cmd.Stderr = &errBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop = func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			if t.Failed() {
				t.Logf("wisp serve stderr:\n%s", errBuf.String())
			}
		}
	}
	defer stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:8000/")
		if err == nil {
			body := make([]byte, 64)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body[:n]), "Hello from wisp") {
				t.Errorf("the installed service answers %d %q", resp.StatusCode, body[:n])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed service does not answer on 127.0.0.1:8000: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// purge takes away the drop-ins wisp install wrote, and leaves a file a
	// person wrote in /etc/wisp/wisp.d
	if code, out, errOut := runWisp(t, 2*time.Minute, "", "install", "/usr/share/wisp/examples/hello/app.py",
		"-c", "/etc/wisp/wisp.toml", "--site", "default", "--vdir", "/extra"); code != 0 {
		t.Errorf("wisp install into the packaged configuration: exit %d\n%s%s", code, out, errOut)
	}
	installed, _ := filepath.Glob("/etc/wisp/wisp.d/*.toml")
	if len(installed) == 0 {
		t.Errorf("wisp install wrote no drop-in into /etc/wisp/wisp.d")
	}
	mine := "/etc/wisp/wisp.d/zz-mine.toml"
	os.WriteFile(mine, []byte("# a person's file\n"), 0o644)
	defer os.RemoveAll("/etc/wisp")
	stop()
	stop = func() {}
	purge()
	for _, f := range installed {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("purge left %s, which wisp install wrote", f)
		}
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("purge removed %s, a file a person wrote: %v", mine, err)
	}
}
