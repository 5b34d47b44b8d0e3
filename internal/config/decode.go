package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// loader turns one file into a Config, collecting every problem on the way.
type loader struct {
	file, dir string
	pos       *positions
	errs      problems
	warns     problems
	failed    map[string]bool // key paths whose value could not be decoded
}

func (l *loader) load(data []byte, dropins ...Dropin) (*Config, error) {
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		return nil, l.syntaxError(l.file, err)
	}
	l.pos = indexPositions(l.file, data)
	l.failed = map[string]bool{}
	if raw == nil {
		raw = map[string]any{}
	}
	for _, d := range definingFirst(dropins) {
		if err := l.merge(raw, d); err != nil {
			return nil, err
		}
	}
	if len(l.errs) > 0 {
		return nil, l.errs.join()
	}
	return l.loadRaw(raw)
}

// loadRaw decodes, completes and validates a generic document whose
// positions (if any) are in l.pos.
func (l *loader) loadRaw(raw map[string]any) (*Config, error) {
	if l.pos == nil {
		l.pos = &positions{at: map[string]place{}}
	}
	if l.failed == nil {
		l.failed = map[string]bool{}
	}
	c := &Config{Server: DefaultServer(), Pools: map[string]*Pool{}, File: l.file, Dir: l.dir}
	l.decodeTable("", raw, reflect.ValueOf(c).Elem())
	l.complete(c)
	l.validate(c)
	if len(l.errs) > 0 {
		return nil, l.errs.join()
	}
	c.Warnings = l.warns.strings()
	c.Sources = l.sources(c)
	return c, nil
}

// syntaxError places an error of the TOML parser in file.
func (l *loader) syntaxError(file string, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return &Error{File: file, Line: line, Column: col, Msg: msg}
	}
	return &Error{File: file, Msg: err.Error()}
}

// errorf records an error about the value at key path p, unless p or one of
// its parents already failed to decode (which would make it an echo).
func (l *loader) errorf(p, format string, args ...any) {
	for q := p; ; q = parentPath(q) {
		if l.failed[q] {
			return
		}
		if q == "" {
			break
		}
	}
	l.errs = append(l.errs, l.problem(p, format, args...))
}

// decodeError records an error that leaves the value at p undecoded.
func (l *loader) decodeError(p, format string, args ...any) {
	l.errorf(p, format, args...)
	l.failed[p] = true
}

func (l *loader) warnf(p, format string, args ...any) {
	l.warns = append(l.warns, l.problem(p, format, args...))
}

func (l *loader) problem(p, format string, args ...any) *Error {
	pl := l.pos.of(p)
	file := pl.file
	if file == "" {
		file = l.file
	}
	return &Error{File: file, Line: pl.line, Column: pl.col, Key: p, Msg: fmt.Sprintf(format, args...)}
}

// defined reports whether the file gives key path p.
func (l *loader) defined(p string) bool {
	_, ok := l.pos.at[p]
	return ok
}

// Key paths are written as in messages: `pools.api.threads`,
// `sites[0].vdirs[1].pool`, `pools."my pool".env`.

func keyPath(parent, name string) string {
	bare := name != ""
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			bare = false
			break
		}
	}
	if !bare {
		name = strconv.Quote(name)
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

func formatKey(k []string) string {
	p := ""
	for _, name := range k {
		p = keyPath(p, name)
	}
	return p
}

// parentPath drops the last part of a key path ("" for a top-level key).
func parentPath(p string) string {
	cut, quoted := 0, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == '.' || c == '['):
			cut = i
		}
	}
	return p[:cut]
}

// positions maps key paths to where the file defines them.
type positions struct {
	at    map[string]place // key path → where it is defined
	lines []int            // offset of each line's first byte
	file  string           // the file being indexed
}

// place is where a key is defined: its file (the main file or a drop-in),
// line and column.
type place struct {
	file      string
	line, col int
}

// of returns the position of p, or of its nearest defined parent.
func (ps *positions) of(p string) place {
	for {
		if pl, ok := ps.at[p]; ok {
			return pl
		}
		if p == "" {
			return place{}
		}
		p = parentPath(p)
	}
}

// indexPositions walks the syntax tree of a document go-toml has accepted
// and notes where each key path is first defined.
func indexPositions(file string, data []byte) *positions {
	ps := &positions{at: map[string]place{}, lines: []int{0}, file: file}
	for i, c := range data {
		if c == '\n' {
			ps.lines = append(ps.lines, i+1)
		}
	}
	arrays := map[string]int{} // array-table path → elements so far
	table := ""
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = ""
			for it := e.Key(); it.Next(); {
				k := it.Node()
				table = keyPath(table, string(k.Data))
				ps.set(table, k)
				n, isArray := arrays[table]
				if e.Kind == unstable.ArrayTable && it.IsLast() {
					arrays[table] = n + 1
					table = indexPath(table, n)
					ps.set(table, k)
				} else if isArray && n > 0 {
					table = indexPath(table, n-1)
				}
			}
		case unstable.KeyValue:
			ps.keyValue(table, e)
		}
	}
	return ps
}

func (ps *positions) keyValue(table string, e *unstable.Node) {
	path := table
	var key *unstable.Node
	for it := e.Key(); it.Next(); {
		key = it.Node()
		path = keyPath(path, string(key.Data))
		ps.set(path, key)
	}
	if key != nil {
		ps.value(path, e.Value(), key)
	}
}

func (ps *positions) value(path string, v, key *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		for it := v.Children(); it.Next(); {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				ps.keyValue(path, kv)
			}
		}
	case unstable.Array:
		i := 0
		for it := v.Children(); it.Next(); {
			el := it.Node()
			if el.Kind == unstable.Comment {
				continue
			}
			p := indexPath(path, i)
			if el.Raw.Length > 0 {
				ps.set(p, el)
			} else {
				ps.set(p, key)
			}
			ps.value(p, el, key)
			i++
		}
	}
}

func (ps *positions) set(path string, n *unstable.Node) {
	if _, ok := ps.at[path]; ok {
		return
	}
	off := int(n.Raw.Offset)
	line := sort.SearchInts(ps.lines, off+1) // lines[line-1] <= off
	ps.at[path] = place{ps.file, line, off - ps.lines[line-1] + 1}
}

// Decoding the generic map go-toml produced into the model, by the JSON
// names of the fields: one name per key in both forms.

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// decodeTable decodes m into the struct dst, the keys m lacks keeping the
// values dst already holds (the defaults).
func (l *loader) decodeTable(path string, m map[string]any, dst reflect.Value) {
	fields := fieldsOf(dst.Type())
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p := keyPath(path, k)
		i, ok := fields[k]
		if !ok {
			l.decodeError(p, "unknown key%s", suggest(k, fields))
			continue
		}
		l.decodeValue(p, m[k], dst.Field(i))
	}
}

// fieldsOf maps the JSON names of t's fields to their indexes.
func fieldsOf(t reflect.Type) map[string]int {
	f := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			f[name] = i
		}
	}
	return f
}

// suggest returns ` (did you mean "x"?)` for the known key closest to k.
func suggest(k string, fields map[string]int) string {
	if len(k) > 64 {
		return ""
	}
	best, bestD := "", 3
	for name := range fields {
		if d := editDistance(strings.ToLower(k), name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	if best == "" || bestD > len(k)/2 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (l *loader) decodeValue(p string, v any, dst reflect.Value) {
	t := dst.Type()
	switch {
	case t == durationType:
		s, ok := v.(string)
		if !ok {
			l.typeError(p, v, `a duration string like "30s" or "5m"`)
			return
		}
		d, err := parseDuration(s)
		if err != nil {
			l.decodeError(p, "%v", err)
			return
		}
		dst.SetInt(int64(d))
	case t == sizeType:
		switch x := v.(type) {
		case int64:
			dst.SetInt(x)
		case string:
			n, err := parseSize(x)
			if err != nil {
				l.decodeError(p, "%v", err)
				return
			}
			dst.SetInt(int64(n))
		default:
			l.typeError(p, v, `a size: an integer (bytes) or a string like "64MiB"`)
		}
	case t.Kind() == reflect.String:
		s, ok := v.(string)
		if !ok {
			l.typeError(p, v, "a string")
			return
		}
		dst.SetString(s)
	case t.Kind() == reflect.Int:
		n, ok := v.(int64)
		if !ok {
			l.typeError(p, v, "an integer")
			return
		}
		dst.SetInt(n)
	case t.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			l.typeError(p, v, "true or false")
			return
		}
		dst.SetBool(b)
	case t.Kind() == reflect.Pointer: // a table: [server]
		m, ok := v.(map[string]any)
		if !ok {
			l.typeError(p, v, "a table")
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.New(t.Elem()))
		}
		l.decodeTable(p, m, dst.Elem())
	case t.Kind() == reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			l.typeError(p, v, "an array"+elemKind(t.Elem()))
			return
		}
		s := reflect.MakeSlice(t, len(a), len(a))
		for i, el := range a {
			l.decodeElem(indexPath(p, i), el, s.Index(i))
		}
		dst.Set(s)
	case t.Kind() == reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			l.typeError(p, v, "a table"+elemKind(t.Elem()))
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(t, len(m)))
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			el := m[k]
			ev := reflect.New(t.Elem()).Elem()
			l.decodeElem(keyPath(p, k), el, ev)
			dst.SetMapIndex(reflect.ValueOf(k), ev)
		}
	default:
		panic(fmt.Sprintf("config: no decoding for %s", t)) // a model field of a new type
	}
}

// decodeElem decodes an array element or map value: tables start from their
// type's defaults.
func (l *loader) decodeElem(p string, v any, dst reflect.Value) {
	if dst.Kind() == reflect.Pointer {
		switch dst.Type().Elem() {
		case reflect.TypeFor[Pool]():
			dst.Set(reflect.ValueOf(DefaultPool()))
		case reflect.TypeFor[Vdir]():
			dst.Set(reflect.ValueOf(&Vdir{Pool: "default"}))
		}
	}
	l.decodeValue(p, v, dst)
}

func elemKind(t reflect.Type) string {
	switch {
	case t.Kind() == reflect.String:
		return " of strings"
	case t.Kind() == reflect.Pointer:
		return " of tables"
	}
	return ""
}

func (l *loader) typeError(p string, v any, want string) {
	l.decodeError(p, "must be %s, got %s", want, describe(v))
}

// describe names a decoded TOML value's type, and shows it when short.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:37] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date/time"
}
