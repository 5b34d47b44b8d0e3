package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Drop-ins are the files of the folder wisp.d beside the main file, read in
// name order and merged into the main file's model: what `wisp install`
// writes, so that it never rewrites a file a person wrote. A drop-in may
// define:
//
//   - new pools ([pools.NAME]); a pool the main file (or an earlier drop-in)
//     defines is an error;
//   - sites ([[sites]]): a site with a new name is added whole (bindings and
//     vdirs); a site whose name exists adds its [[sites.vdirs]] to it, and
//     may give nothing but its name and vdirs.
//
// [server] belongs to the main file. Relative paths in a drop-in are taken
// against the main file's folder, as in the main file. Errors name the
// drop-in's file and line.

// DropinDir is the folder of drop-ins beside a main file.
func DropinDir(mainFile string) string { return filepath.Join(filepath.Dir(mainFile), "wisp.d") }

// Dropin is one drop-in file's name and text.
type Dropin struct {
	File string
	Data []byte
}

// ReadDropins reads the *.toml files of the drop-in folder of mainFile, in
// name order. A missing folder has none.
func ReadDropins(mainFile string) ([]Dropin, error) {
	dir := DropinDir(mainFile)
	names, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Dropin
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("config: drop-in: %w", err)
		}
		out = append(out, Dropin{File: n, Data: b})
	}
	return out, nil
}

// ParseWithDropins parses a main file and its drop-ins as one model.
func ParseWithDropins(name string, data []byte, dropins []Dropin) (*Config, error) {
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	l := &loader{file: name, dir: dir}
	return l.load(data, dropins...)
}

// merge adds a drop-in's document to the main document raw, and its key
// positions (renumbered to where its elements land) to l.pos.
func (l *loader) merge(raw map[string]any, d Dropin) error {
	var dr map[string]any
	if err := toml.Unmarshal(d.Data, &dr); err != nil {
		return l.syntaxError(d.File, err)
	}
	dps := indexPositions(d.File, d.Data)
	at := func(p string) place {
		pl := dps.of(p)
		if pl.file == "" {
			pl.file = d.File
		}
		return pl
	}
	fail := func(p, format string, args ...any) {
		pl := at(p)
		l.errs = append(l.errs, &Error{File: pl.file, Line: pl.line, Column: pl.col, Key: p, Msg: fmt.Sprintf(format, args...)})
	}
	// moved maps a key path prefix of the drop-in to where it lands.
	moved := map[string]string{}
	for _, k := range sortedAnyKeys(dr) {
		switch k {
		case "pools":
			pools, ok := dr[k].(map[string]any)
			if !ok {
				fail(k, "must be a table of pools")
				continue
			}
			main, _ := raw["pools"].(map[string]any)
			if main == nil {
				main = map[string]any{}
				raw["pools"] = main
			}
			for _, name := range sortedAnyKeys(pools) {
				p := keyPath("pools", name)
				if _, dup := main[name]; dup {
					fail(p, "pool %q is already defined (%s)", name, l.pos.of(p).String())
					continue
				}
				main[name] = pools[name]
				moved[p] = p
			}
		case "sites":
			sites, ok := dr[k].([]any)
			if !ok {
				fail(k, "must be an array of tables ([[sites]])")
				continue
			}
			mainSites, _ := raw["sites"].([]any)
			for i, sv := range sites {
				sp := indexPath("sites", i)
				s, ok := sv.(map[string]any)
				if !ok {
					fail(sp, "must be a table")
					continue
				}
				name, _ := s["name"].(string)
				existing := -1
				for j, mv := range mainSites {
					if m, ok := mv.(map[string]any); ok && name != "" && m["name"] == name {
						existing = j
					}
				}
				if existing < 0 {
					moved[sp] = indexPath("sites", len(mainSites))
					mainSites = append(mainSites, s)
					continue
				}
				m := mainSites[existing].(map[string]any)
				for _, key := range sortedAnyKeys(s) {
					if key != "name" && key != "vdirs" {
						fail(keyPath(sp, key), "site %q is defined in %s: a drop-in may add vdirs to it, not set %s", name, l.pos.of(indexPath("sites", existing)).String(), key)
					}
				}
				vdirs, _ := s["vdirs"].([]any)
				mv, _ := m["vdirs"].([]any)
				for j, v := range vdirs {
					moved[indexPath(keyPath(sp, "vdirs"), j)] = indexPath(keyPath(indexPath("sites", existing), "vdirs"), len(mv))
					mv = append(mv, v)
				}
				m["vdirs"] = mv
			}
			raw["sites"] = mainSites
		case "server":
			fail(k, "[server] belongs in the main file, not a drop-in")
		default:
			fail(k, "unknown key %q: a drop-in defines pools and sites", k)
		}
	}
	for p, pl := range dps.at {
		for from, to := range moved {
			if p == from || strings.HasPrefix(p, from+".") || strings.HasPrefix(p, from+"[") {
				if _, ok := l.pos.at[to+p[len(from):]]; !ok {
					l.pos.at[to+p[len(from):]] = pl
				}
			}
		}
	}
	return nil
}

// definingFirst orders drop-ins so that those that define pools or sites
// (with bindings) are merged before those that add vdirs to them, whatever
// their names: wisp install's SITE--VDIR.toml sorts before SITE.site.toml.
func definingFirst(ds []Dropin) []Dropin {
	defines := func(d Dropin) bool {
		var m map[string]any
		if toml.Unmarshal(d.Data, &m) != nil {
			return false
		}
		if _, ok := m["pools"]; ok {
			return true
		}
		sites, _ := m["sites"].([]any)
		for _, s := range sites {
			if sm, ok := s.(map[string]any); ok && sm["bindings"] != nil {
				return true
			}
		}
		return false
	}
	out := append([]Dropin(nil), ds...)
	sort.SliceStable(out, func(a, b int) bool { return defines(out[a]) && !defines(out[b]) })
	return out
}

func sortedAnyKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String is "file:line" of a place ("" when unknown).
func (p place) String() string {
	if p.file == "" {
		return "unknown place"
	}
	if p.line == 0 {
		return p.file
	}
	return p.file + ":" + strconv.Itoa(p.line)
}

// sources is the file each pool, site and vdir comes from, by key path
// ("pools.NAME", "sites[0]", "sites[0].vdirs[1]").
func (l *loader) sources(c *Config) map[string]string {
	out := map[string]string{}
	src := func(p string) string {
		if f := l.pos.of(p).file; f != "" {
			return f
		}
		return l.file
	}
	for name := range c.Pools {
		p := keyPath("pools", name)
		if _, ok := l.pos.at[p]; ok {
			out[p] = src(p)
		} else {
			out[p] = l.file // the implicit default pool
		}
	}
	for i, s := range c.Sites {
		sp := indexPath("sites", i)
		out[sp] = src(sp)
		for j := range s.Vdirs {
			vp := indexPath(keyPath(sp, "vdirs"), j)
			out[vp] = src(vp)
		}
	}
	return out
}

// dropinNameRE is what the names of drop-ins before issue 19 replaced
// with "_" (LegacyDropinName).
var dropinNameRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SafeName is a name as it may appear in a drop-in's file name.
func SafeName(s string) string { return dropinNameRE.ReplaceAllString(s, "_") }

// PoolKey is the key path of a pool, as Sources and errors write it.
func PoolKey(name string) string { return keyPath("pools", name) }

// DropinName is the file name of the drop-in of a site's vdir,
// "SITE--VDIR.toml": one name per site and vdir, and two sites or vdirs
// never share one (DecodeDropinName reads it back). VDIR is the path
// without its leading '/', each '/' written '_', and every byte but
// letters, digits, '.' and '-' written %XX ("_" is %5F): "/api/v1" is
// "api_v1", "/api_v1" is "api%5Fv1". The root is "ROOT" (the vdir
// "/ROOT" is "%52OOT"). SITE is written the same way, except that '_'
// stays '_' (a site has no '/' to write so) and a '-' that another '-'
// follows, or that ends SITE, is %2D, so that the first "--" ends SITE.
func DropinName(site, vdir string) string {
	var b strings.Builder
	b.WriteString(DropinSiteName(site))
	b.WriteString("--")
	v := strings.TrimPrefix(vdir, "/")
	switch v {
	case "":
		b.WriteString("ROOT")
	case "ROOT":
		b.WriteString("%52OOT")
	default:
		for i := 0; i < len(v); i++ {
			switch c := v[i]; {
			case c == '/':
				b.WriteByte('_')
			case keepByte(c):
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
	}
	b.WriteString(".toml")
	return b.String()
}

// DropinSiteName is a site's (or a pool's) name as a drop-in's file name
// writes it: readable, one name per site, never holding "--" (every
// drop-in of a vdir does: so `wisp install`'s SITE.site.toml and
// POOL.pool.toml can never be taken for one), never ending in '-' or
// starting with '.'.
func DropinSiteName(site string) string {
	var b strings.Builder
	for i := 0; i < len(site); i++ {
		c := site[i]
		if (keepByte(c) || c == '_') && !(c == '-' && (i == len(site)-1 || site[i+1] == '-')) && !(c == '.' && i == 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// keepByte reports whether a drop-in's file name holds c as it is.
func keepByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-'
}

// DecodeDropinName is the site and vdir whose drop-in is named name (a
// base name, as DropinName writes it); ok is false for any other name.
func DecodeDropinName(name string) (site, vdir string, ok bool) {
	rest, ok := strings.CutSuffix(name, ".toml")
	if !ok {
		return "", "", false
	}
	s, v, ok := strings.Cut(rest, "--")
	if !ok {
		return "", "", false
	}
	site, err := url.PathUnescape(s)
	if err != nil {
		return "", "", false
	}
	if v == "ROOT" {
		vdir = "/"
	} else {
		segs := strings.Split(v, "_")
		for i, seg := range segs {
			if segs[i], err = url.PathUnescape(seg); err != nil {
				return "", "", false
			}
		}
		vdir = "/" + strings.Join(segs, "/")
	}
	if DropinName(site, vdir) != name { // not written by DropinName
		return "", "", false
	}
	return site, vdir, true
}

// LegacyDropinName is the name DropinName gave before issue 19, when
// "/api/v1" and "/api_v1" both became "SITE--api_v1.toml": wisp install
// and remove still find an older install by it (after checking what the
// file holds).
func LegacyDropinName(site, vdir string) string {
	v := strings.Trim(vdir, "/")
	if v == "" {
		v = "ROOT"
	}
	return dropinNameRE.ReplaceAllString(site, "_") + "--" + dropinNameRE.ReplaceAllString(strings.ReplaceAll(v, "/", "_"), "_") + ".toml"
}

// VdirDropin is the site and vdir that an install's drop-in holds: one
// [[sites]] with its name and one [[sites.vdirs]], nothing else (what
// `wisp install` writes). ok is false for anything else, or for a file
// that does not parse.
func VdirDropin(data []byte) (site, vdir string, ok bool) {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil || len(doc) != 1 {
		return "", "", false
	}
	sites, _ := doc["sites"].([]any)
	if len(sites) != 1 {
		return "", "", false
	}
	st, _ := sites[0].(map[string]any)
	name, _ := st["name"].(string)
	vdirs, _ := st["vdirs"].([]any)
	if len(st) != 2 || name == "" || len(vdirs) != 1 {
		return "", "", false
	}
	v, _ := vdirs[0].(map[string]any)
	path, _ := v["path"].(string)
	if path == "" {
		return "", "", false
	}
	if p, err := cleanVdirPath(path); err == nil {
		path = p // "/api/" is "/api", as loading makes it
	}
	return name, path, true
}
