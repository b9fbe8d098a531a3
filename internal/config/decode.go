package config

import (
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Error is one problem found in a configuration file. Parse and Load return
// either a single *Error (syntax errors) or several joined with errors.Join,
// ordered by line; errors.As finds the first.
type Error struct {
	File string // file name as given to Parse or Load
	Line int    // 1-based line; 0 when the value is a default not written in the file
	Key  string // full key, e.g. "limits.max_message_size" or "listener[1].tls"; may be empty for syntax errors
	Msg  string
}

// Error formats the problem as "file:line: key: message", the form editors
// and grep understand.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// decoder turns the generic tree produced by the TOML parser into a Config,
// collecting every error instead of stopping at the first one. It does the
// job of toml.Decode into a struct (and of MetaData.Undecoded for unknown
// keys) itself because the library stops at the first type error and only
// knows the line of the last occurrence of a key, which is wrong for the
// second and later [[listener]] entries.
type decoder struct {
	file  string
	lines map[string]int // key → line, from keyLines
	errs  []*Error
}

// line returns the line of key, or of its nearest ancestor written in the
// file: a missing required key is reported at its table's header.
func (d *decoder) line(key string) int {
	for {
		if l, ok := d.lines[key]; ok {
			return l
		}
		if key == "" {
			return 0
		}
		key = parentKey(key)
	}
}

func (d *decoder) errorf(key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err returns the collected errors ordered by line (defaults, which have no
// line, last), or nil.
func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int {
		la, lb := a.Line, b.Line
		if la == 0 {
			la = int(^uint(0) >> 1)
		}
		if lb == 0 {
			lb = int(^uint(0) >> 1)
		}
		return cmp.Compare(la, lb)
	})
	if len(d.errs) == 1 {
		return d.errs[0]
	}
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// defaulter is implemented by array-of-table element types whose fields have
// defaults; a new element is filled in before its keys are decoded.
type defaulter interface {
	setDefaults()
}

// decode stores the TOML value v (as produced by the TOML parser: string,
// int64, float64, bool, time.Time, []any, []map[string]any or
// map[string]any) into rv, which must be addressable.
func (d *decoder) decode(key string, v any, rv reflect.Value) {
	switch p := rv.Addr().Interface().(type) {
	case *Size:
		if err := p.fromTOML(v); err != nil {
			d.errorf(key, "%v", err)
		}
		return
	case *netip.Prefix:
		if s, ok := d.str(key, v); ok {
			pfx, err := ParsePrefix(s)
			if err != nil {
				d.errorf(key, "%v", err)
			}
			*p = pfx
		}
		return
	case *slog.Level:
		if s, ok := d.str(key, v); ok {
			if err := parseLevel(s, p); err != nil {
				d.errorf(key, "%v", err)
			}
		}
		return
	case encoding.TextUnmarshaler:
		if s, ok := d.str(key, v); ok {
			if err := p.UnmarshalText([]byte(s)); err != nil {
				d.errorf(key, "%v", err)
			}
		}
		return
	}

	switch rv.Kind() {
	case reflect.String:
		if s, ok := d.str(key, v); ok {
			rv.SetString(s)
		}
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			d.errorf(key, "must be a boolean (true or false), not %s", tomlTypeName(v))
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			d.errorf(key, "must be an integer, not %s", tomlTypeName(v))
			return
		}
		if rv.OverflowInt(n) {
			d.errorf(key, "%d is too large", n)
			return
		}
		rv.SetInt(n)
	case reflect.Slice:
		var elems []any
		switch v := v.(type) {
		case []any:
			elems = v
		case []map[string]any:
			for _, e := range v {
				elems = append(elems, e)
			}
		default:
			d.errorf(key, "must be an array, not %s", tomlTypeName(v))
			return
		}
		s := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
		for i, e := range elems {
			ev := s.Index(i)
			if def, ok := ev.Addr().Interface().(defaulter); ok {
				def.setDefaults()
			}
			d.decode(indexKey(key, i), e, ev)
		}
		rv.Set(s)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			d.errorf(key, "must be a table, not %s", tomlTypeName(v))
			return
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(rv.Type().Elem()).Elem()
			d.decode(childKey(key, k), m[k], ev)
			out.SetMapIndex(reflect.ValueOf(k).Convert(rv.Type().Key()), ev)
		}
		rv.Set(out)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.errorf(key, "must be a table, not %s", tomlTypeName(v))
			return
		}
		fields := tomlFields(rv.Type())
		for _, k := range sortedKeys(m) {
			i, ok := fields[k]
			if !ok {
				d.unknownKey(childKey(key, k), k, fields)
				continue
			}
			d.decode(childKey(key, k), m[k], rv.Field(i))
		}
	default:
		// Only reachable by adding a field of a new type to Config.
		panic(fmt.Sprintf("config: no decoder for %s (key %s)", rv.Type(), key))
	}
}

func (d *decoder) str(key string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		d.errorf(key, "must be a string, not %s", tomlTypeName(v))
	}
	return s, ok
}

// unknownKey reports a key the schema does not have, suggesting the closest
// known one: a typo should not be silently ignored, nor be a riddle.
func (d *decoder) unknownKey(key, name string, fields map[string]int) {
	best, bestDist := "", 3 // suggest only within an edit distance of 2
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	for f := range fields {
		dist := editDistance(norm(name), f)
		if dist < bestDist || dist == bestDist && f < best {
			best, bestDist = f, dist
		}
	}
	if best != "" {
		d.errorf(key, "unknown key (did you mean %q?)", best)
		return
	}
	d.errorf(key, "unknown key")
}

// tomlFields maps the toml tag names of struct type t to field indexes.
func tomlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// tomlTypeName names the TOML type of a parsed value, with an article, for
// error messages.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", v)
}

// parseLevel accepts the four slog level names. slog.Level.UnmarshalText is
// not used because it also accepts forms like "info+2" that would only
// confuse a configuration file.
func parseLevel(s string, l *slog.Level) error {
	switch strings.ToLower(s) {
	case "debug":
		*l = slog.LevelDebug
	case "info":
		*l = slog.LevelInfo
	case "warn":
		*l = slog.LevelWarn
	case "error":
		*l = slog.LevelError
	default:
		return fmt.Errorf("%q is not a log level (debug|info|warn|error)", s)
	}
	return nil
}

// editDistance is the Levenshtein distance between a and b.
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
