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
