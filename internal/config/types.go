package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("90s", "5m",
// "1h30m") in TOML and JSON. Convert with time.Duration(d).
type Duration time.Duration

// String formats d like time.Duration does, without the trailing zero units
// ("5m" rather than "5m0s", "1h" rather than "1h0m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText writes d as a duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration string (time.ParseDuration syntax).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a number and a unit, like \"90s\", \"5m\" or \"1h30m\")", s)
	}
	return Duration(v), nil
}

// Size is a number of bytes. TOML accepts an integer (bytes) or a string with
// a unit: "512KiB", "64MiB", "1GiB" (powers of 1024, also written K, M, G, T)
// or "500kB", "10MB", "1GB" (powers of 1000). JSON carries the integer.
type Size int64

// String formats s with the largest binary unit that divides it exactly
// ("64KiB", "1GiB"), else in bytes ("1000").
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalJSON writes s as a JSON integer.
func (s Size) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, int64(s), 10), nil }

// UnmarshalJSON reads a JSON integer or a size string.
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		v, err := parseSize(str)
		if err != nil {
			return err
		}
		*s = v
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("size: want an integer number of bytes or a string like \"64MiB\", got %s", b)
	}
	*s = Size(n)
	return nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1000,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1000 * 1000,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1000 * 1000 * 1000,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1000 * 1000 * 1000 * 1000,
}

var errSizeSyntax = errors.New(`want an integer number of bytes or a string like "512KiB", "64MiB", "1GiB" or "10MB"`)

// ParseSize reads a size as wisp.toml writes it: bytes, or a number with a
// unit ("64MiB", "10MB"); the command line's size flags take the same.
func ParseSize(s string) (int64, error) {
	v, err := parseSize(s)
	return int64(v), err
}

func parseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: %w", s, errSizeSyntax)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || !ok {
		return 0, fmt.Errorf("invalid size %q: %w", s, errSizeSyntax)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n * mult), nil
}
