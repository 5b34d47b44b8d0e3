// Package install is `wisp install`, `wisp remove` and `wisp list`: the way
// the seed's users deployed a WSGI app into IIS with
// `python myapp.py install --server=MySite`, for wisp.
//
// An install never rewrites a file a person wrote. Each install is a drop-in
// of the wisp.d folder beside the main wisp.toml (see config.ReadDropins):
//
//	wisp.d/SITE--VDIR.toml   the vdir (one per install; installing again replaces it;
//	                         config.DropinName: /api/v1 is api_v1, /api_v1 api%5Fv1)
//	wisp.d/SITE.site.toml    a site the install created (bindings), while it has vdirs
//	wisp.d/POOL.pool.toml    a pool the install created, while a vdir uses it
//
// Files are written atomically (a temp file, then rename), and the result
// is loaded with the main file before anything is applied: a change that
// does not load, or whose workers fail, is rolled back.
package install

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"wisp/internal/config"
)

//go:embed all:shim
var shimFS embed.FS

// ShimDir writes the Python shim folder (isapi.install, win32traceutil and
// a sitecustomize that makes sys a builtin for the seed's script) once per
// version of its files, and returns it: the folder `wisp pythonpath` prints,
// for `python3 myapp.py install`.
func ShimDir(exe string) (string, error) {
	h := sha256.New()
	var files []string
	fs.WalkDir(shimFS, "shim", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "__pycache__" {
			return fs.SkipDir
		}
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	for _, f := range files {
		b, _ := shimFS.ReadFile(f)
		h.Write([]byte(f))
		h.Write(b)
	}
	h.Write([]byte(exe))
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "wisp", "python-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := os.Stat(filepath.Join(dir, "wisp.json")); err == nil {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".shim-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", fmt.Errorf("python shim folder: %w", err)
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), ".shim-"); err != nil {
			return "", fmt.Errorf("python shim folder: %w", err)
		}
	}
	for _, f := range files {
		b, _ := shimFS.ReadFile(f)
		dst := filepath.Join(tmp, strings.TrimPrefix(f, "shim/"))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	meta, _ := json.Marshal(map[string]string{"exe": exe})
	os.WriteFile(filepath.Join(tmp, "wisp.json"), meta, 0o644)
	os.Chmod(tmp, 0o755)
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(dir, "wisp.json")); serr == nil {
			return dir, nil // another wisp made it meanwhile
		}
		return "", fmt.Errorf("python shim folder: %w", err)
	}
	return dir, nil
}

// ScriptParams are what an ISAPI-WSGI script's install block asks for.
type ScriptParams struct {
	Verb   string      `json:"verb"`   // install or remove
	Server string      `json:"server"` // --server, or the params' ServerName
	Script string      `json:"script"`
	Vdirs  []VdirParam `json:"vdirs"`
}

// VdirParam is one VirtualDirParameters.
type VdirParam struct {
	Name        string `json:"name"` // "/wsgi-test", or "/" for the root
	Description string `json:"description"`
	Update      string `json:"script_map_update"`
}

// Request is one install.
type Request struct {
	Config      string // the main wisp.toml
	Site        string
	Vdir        string // "/x" or "/"
	Pool        string
	App         string // the target, absolute for a file
	Description string
	Binding     string         // of a site the install creates
	PoolKeys    map[string]any // settings of a pool the install creates
}

// Change is a set of drop-in files to write (content) or delete (nil).
type Change struct {
	Files map[string][]byte
	prev  map[string][]byte // what was there (nil: nothing), for Rollback
	Notes []string          // what the change does, for the person
}

// DefaultBinding is the binding of a site that `wisp install` creates.
const DefaultBinding = "127.0.0.1:8000"

// SiteFile, PoolFile and VdirFile are the drop-ins of an install.
// Site and pool file names never hold "--", which every vdir file's does
// (config.DropinSiteName): a site named s--q and the vdir /q.site of site s
// cannot share a file.
func SiteFile(cfg, site string) string {
	return filepath.Join(config.DropinDir(cfg), config.DropinSiteName(site)+".site.toml")
}
func PoolFile(cfg, pool string) string {
	return filepath.Join(config.DropinDir(cfg), config.DropinSiteName(pool)+".pool.toml")
}

// legacySiteFile and legacyPoolFile are the names SiteFile and PoolFile
// gave before, which a vdir's drop-in could share.
func legacySiteFile(cfg, site string) string {
	return filepath.Join(config.DropinDir(cfg), config.SafeName(site)+".site.toml")
}
func legacyPoolFile(cfg, pool string) string {
	return filepath.Join(config.DropinDir(cfg), config.SafeName(pool)+".pool.toml")
}

// definesOnly reports whether file is what an install wrote for a site
// (kind "sites": one [[sites]] of that name, with no vdir) or a pool (kind
// "pools": that one pool), and what it holds otherwise.
func definesOnly(file, kind, name string) (ok bool, what string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err.Error()
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil || len(doc) != 1 {
		return false, "something other than one install's " + strings.TrimSuffix(kind, "s")
	}
	switch kind {
	case "sites":
		sites, _ := doc["sites"].([]any)
		if len(sites) == 1 {
			st, _ := sites[0].(map[string]any)
			if n, _ := st["name"].(string); n == name && st["vdirs"] == nil {
				return true, ""
			}
			if n, _ := st["name"].(string); n != "" {
				return false, "site " + n
			}
		}
	case "pools":
		pools, _ := doc["pools"].(map[string]any)
		if _, ok := pools[name]; ok && len(pools) == 1 {
			return true, ""
		}
	}
	return false, "something other than " + strings.TrimSuffix(kind, "s") + " " + name
}

// ownFile is the file an install wrote for a site or a pool (kind "sites"
// or "pools"), by its name or its older one, "" if neither holds it.
func ownFile(file, legacy, kind, name string) string {
	for _, f := range []string{file, legacy} {
		if exists(f) {
			if ok, _ := definesOnly(f, kind, name); ok {
				return f
			}
		}
	}
	return ""
}
func VdirFile(cfg, site, vdir string) string {
	return filepath.Join(config.DropinDir(cfg), config.DropinName(site, vdir))
}

// legacyVdirFile is the name VdirFile gave before issue 19, which two vdirs
// could share (config.LegacyDropinName).
func legacyVdirFile(cfg, site, vdir string) string {
	return filepath.Join(config.DropinDir(cfg), config.LegacyDropinName(site, vdir))
}

// holds reports whether file is the drop-in of the install of site and
// vdir (and nothing else); what says what it holds instead, for errors.
func holds(file, site, vdir string) (ok bool, what string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return false, err.Error()
	}
	s, v, isInstall := config.VdirDropin(b)
	if !isInstall {
		return false, "something other than one install (a [[sites]] with a name and one [[sites.vdirs]])"
	}
	return s == site && v == vdir, fmt.Sprintf("the install of site %s vdir %s", s, v)
}

// load reads the main file and its drop-ins; a missing main file is an
// empty configuration. One with no site yet (what the first install makes)
// loads, with its pools.
func load(path string) (*config.Config, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, nil
	}
	return config.Load(path)
}

// Install plans the drop-ins of an install: the vdir's file (replacing an
// earlier install of the same site and vdir), and the site's and pool's
// when they are missing. A vdir a person wrote in the main file is not
// replaced.
func Install(r Request) (*Change, error) {
	cur, err := load(r.Config)
	if err != nil {
		return nil, fmt.Errorf("the configuration does not load as it is; fix it first: %w", err)
	}
	ch := &Change{Files: map[string][]byte{}}
	vfile := VdirFile(r.Config, r.Site, r.Vdir)
	if n := len(filepath.Base(vfile)); n > 255 {
		return nil, fmt.Errorf("site %s vdir %s: its drop-in's name would be %d bytes, more than a file name may have (255)", r.Site, r.Vdir, n)
	}
	if exists(vfile) {
		if ok, what := holds(vfile, r.Site, r.Vdir); !ok {
			return nil, fmt.Errorf("%s holds %s, not %s%s: it is not replaced; move it away first", vfile, what, r.Site, r.Vdir)
		}
	}
	siteExists, poolExists, legacyReplaced := false, false, false
	if cur != nil {
		_, poolExists = cur.Pools[r.Pool]
		for i, st := range cur.Sites {
			if st.Name != r.Site {
				continue
			}
			siteExists = true
			for j, v := range st.Vdirs {
				src := cur.Sources[fmt.Sprintf("sites[%d].vdirs[%d]", i, j)]
				if v.Path != r.Vdir || sameFile(src, vfile) {
					continue
				}
				if legacy := legacyVdirFile(r.Config, r.Site, r.Vdir); sameFile(src, legacy) {
					if ok, _ := holds(legacy, r.Site, r.Vdir); ok {
						ch.Files[legacy] = nil // an earlier install, by its older name: replaced
						legacyReplaced = true
						continue
					}
				}
				return nil, fmt.Errorf("site %s already has the vdir %s, from %s: remove it there first (wisp install replaces only its own installs)", r.Site, r.Vdir, src)
			}
		}
	}
	for _, f := range []struct {
		make             bool
		file, kind, name string
	}{
		{!siteExists, SiteFile(r.Config, r.Site), "sites", r.Site},
		{!poolExists, PoolFile(r.Config, r.Pool), "pools", r.Pool},
	} {
		if f.make && exists(f.file) {
			if ok, what := definesOnly(f.file, f.kind, f.name); !ok {
				return nil, fmt.Errorf("%s holds %s: wisp install does not overwrite it; move it away first", f.file, what)
			}
		}
	}
	if !siteExists {
		b := r.Binding
		if b == "" {
			b = DefaultBinding
		}
		ch.Files[SiteFile(r.Config, r.Site)] = encode("a site made by wisp install; removed with its last vdir", map[string]any{
			"sites": []any{map[string]any{"name": r.Site, "bindings": []any{b}}}})
		ch.Notes = append(ch.Notes, fmt.Sprintf("site %s created, bound to %s", r.Site, b))
	}
	if !poolExists {
		keys := map[string]any{}
		for k, v := range r.PoolKeys {
			keys[k] = v
		}
		ch.Files[PoolFile(r.Config, r.Pool)] = encode("a pool made by wisp install; removed when no vdir uses it", map[string]any{
			"pools": map[string]any{r.Pool: keys}})
		ch.Notes = append(ch.Notes, fmt.Sprintf("pool %s created", r.Pool))
	} else if len(r.PoolKeys) > 0 {
		ch.Notes = append(ch.Notes, fmt.Sprintf("pool %s exists: its settings are kept (pool flags apply to a pool the install creates)", r.Pool))
	}
	vdir := map[string]any{"path": r.Vdir, "app": r.App, "pool": r.Pool}
	if r.Description != "" {
		vdir["description"] = r.Description
	}
	ch.Files[vfile] = encode("installed by wisp install; wisp remove --site "+r.Site+" --vdir "+r.Vdir+" takes it away", map[string]any{
		"sites": []any{map[string]any{"name": r.Site, "vdirs": []any{vdir}}}})
	if exists(vfile) || legacyReplaced {
		ch.Notes = append(ch.Notes, fmt.Sprintf("%s%s replaced (%s)", r.Site, r.Vdir, vfile))
	} else {
		ch.Notes = append(ch.Notes, fmt.Sprintf("%s%s installed (%s)", r.Site, r.Vdir, vfile))
	}
	return ch, nil
}

// Remove plans taking an install away: its vdir file, and the site and pool
// files of the install that nothing uses any more.
func Remove(cfgPath, site, vdir string) (*Change, error) {
	cur, err := load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("the configuration does not load as it is; fix it first: %w", err)
	}
	vfile := VdirFile(cfgPath, site, vdir)
	found := false
	for _, f := range []string{vfile, legacyVdirFile(cfgPath, site, vdir)} {
		if ok, _ := holds(f, site, vdir); ok {
			vfile, found = f, true // or by its older name: an install from before issue 19
			break
		}
	}
	if !found {
		if ok, what := holds(vfile, site, vdir); exists(vfile) && !ok {
			return nil, fmt.Errorf("%s holds %s, not %s%s: nothing removed", vfile, what, site, vdir)
		}
		if cur != nil {
			for i, st := range cur.Sites {
				for j, v := range st.Vdirs {
					if st.Name == site && v.Path == vdir {
						return nil, fmt.Errorf("%s%s comes from %s, not from wisp install: remove it there", site, vdir, cur.Sources[fmt.Sprintf("sites[%d].vdirs[%d]", i, j)])
					}
				}
			}
		}
		return nil, fmt.Errorf("no install of %s at site %s (no %s)", vdir, site, vfile)
	}
	ch := &Change{Files: map[string][]byte{vfile: nil}, Notes: []string{fmt.Sprintf("%s%s removed (%s)", site, vdir, vfile)}}
	if cur == nil {
		return ch, nil
	}
	// what is left once the vdir goes
	pool := ""
	vdirsLeft := 0
	usedPools := map[string]bool{}
	for i, st := range cur.Sites {
		for j, v := range st.Vdirs {
			if sameFile(cur.Sources[fmt.Sprintf("sites[%d].vdirs[%d]", i, j)], vfile) {
				pool = v.Pool
				continue
			}
			usedPools[v.Pool] = true
			if st.Name == site {
				vdirsLeft++
			}
		}
	}
	// only a file that holds exactly the install's site or pool goes
	if sf := ownFile(SiteFile(cfgPath, site), legacySiteFile(cfgPath, site), "sites", site); vdirsLeft == 0 && sf != "" {
		ch.Files[sf] = nil
		ch.Notes = append(ch.Notes, fmt.Sprintf("site %s removed: it has no vdir left (%s)", site, sf))
	}
	if pf := ownFile(PoolFile(cfgPath, pool), legacyPoolFile(cfgPath, pool), "pools", pool); pool != "" && !usedPools[pool] && pf != "" {
		ch.Files[pf] = nil
		ch.Notes = append(ch.Notes, fmt.Sprintf("pool %s removed: no vdir uses it (%s)", pool, pf))
	}
	return ch, nil
}

// Apply writes the change atomically, file by file, keeping what was there
// for Rollback.
func (ch *Change) Apply() error {
	ch.prev = map[string][]byte{}
	for _, f := range sortedFiles(ch.Files) {
		if b, err := os.ReadFile(f); err == nil {
			ch.prev[f] = b
		} else {
			ch.prev[f] = nil
		}
		if err := write(f, ch.Files[f]); err != nil {
			ch.Rollback()
			return err
		}
	}
	return nil
}

// Rollback puts back what Apply changed.
func (ch *Change) Rollback() {
	for f, b := range ch.prev {
		write(f, b)
	}
}

// write replaces f with b (a temp file, then rename); nil deletes it.
func write(f string, b []byte) error {
	if b == nil {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f), ".install-*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	os.Chmod(tmp.Name(), 0o644)
	if err := os.Rename(tmp.Name(), f); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

func encode(comment string, doc map[string]any) []byte {
	b, err := config.MapTOML(doc)
	if err != nil {
		panic(err) // a document of strings and lists always encodes
	}
	return append([]byte("# "+comment+"\n"), b...)
}

func sortedFiles(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func exists(f string) bool { _, err := os.Stat(f); return err == nil }

func sameFile(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// Entry is one line of `wisp list`.
type Entry struct {
	Site        string   `json:"site"`
	Bindings    []string `json:"bindings"`
	Vdir        string   `json:"vdir"`
	App         string   `json:"app"`
	Pool        string   `json:"pool"`
	Description string   `json:"description,omitempty"`
	File        string   `json:"file"`      // where the vdir is defined
	SiteFile    string   `json:"site_file"` // where the site is defined
	PoolFile    string   `json:"pool_file"` // where the pool is defined
}

// List is every vdir of the configuration, with the files they come from.
func List(path string) ([]Entry, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for i, st := range cfg.Sites {
		for j, v := range st.Vdirs {
			out = append(out, Entry{Site: st.Name, Bindings: st.Bindings, Vdir: v.Path, App: v.App, Pool: v.Pool,
				Description: v.Description, File: cfg.Sources[fmt.Sprintf("sites[%d].vdirs[%d]", i, j)],
				SiteFile: cfg.Sources[fmt.Sprintf("sites[%d]", i)], PoolFile: cfg.Sources[config.PoolKey(v.Pool)]})
		}
	}
	return out, nil
}
