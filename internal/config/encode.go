package config

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/pelletier/go-toml/v2"
)

// Map returns the model as the generic document a TOML file or a JSON body
// decodes to: the same keys, durations as strings, sizes as integers.
func (c *Config) Map() (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return integers(m).(map[string]any), nil
}

// integers turns the json.Numbers of a decoded document into int64 (every
// number of the model is an integer), so that TOML writes them as integers.
func integers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = integers(x)
		}
	case []any:
		for i, x := range t {
			t[i] = integers(x)
		}
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// TOML writes the model as a wisp.toml that loads to the same model
// (defaults written out, paths absolute).
func (c *Config) TOML() ([]byte, error) {
	m, err := c.Map()
	if err != nil {
		return nil, err
	}
	return MapTOML(m)
}

// MapTOML writes a generic document (see Map) as TOML.
func MapTOML(m map[string]any) ([]byte, error) {
	var b bytes.Buffer
	e := toml.NewEncoder(&b)
	e.SetIndentTables(true)
	if err := e.Encode(m); err != nil {
		return nil, fmt.Errorf("config: write TOML: %w", err)
	}
	return b.Bytes(), nil
}

// FromJSON loads a model sent as JSON (the control API's PUT and PATCH
// /v1/config): the same keys, strict decoding, defaults and validation as a
// file, with relative paths taken in dir. source names the body in errors
// ("PUT /v1/config"); they carry key paths, not lines.
func FromJSON(source, dir string, body []byte) (*Config, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, &Error{File: source, Msg: "not a JSON object: " + err.Error()}
	}
	return FromMap(source, dir, integers(m).(map[string]any))
}

// FromMap loads a generic document (see Map) like a file.
func FromMap(source, dir string, m map[string]any) (*Config, error) {
	l := &loader{file: source, dir: dir}
	return l.loadRaw(m)
}

// MergePatch applies an RFC 7396 JSON merge patch to doc: objects merge
// key by key, null deletes, anything else (arrays too) replaces.
func MergePatch(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, v := range patch {
		if v == nil {
			delete(doc, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			dm, _ := doc[k].(map[string]any)
			doc[k] = MergePatch(dm, pm)
			continue
		}
		doc[k] = v
	}
	return doc
}

// DecodeJSON reads a JSON object with integer numbers as int64, as Map
// gives them.
func DecodeJSON(body []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return integers(m).(map[string]any), nil
}
