package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment override, e.g.
// FRAMEPUSH_SERVER_ADDRESSES=10.0.0.5:7400 or FRAMEPUSH_TRIGGER_GPIO_LINE=GPIO17.
const EnvPrefix = "FRAMEPUSH_"

// FRAMEPUSH_CONFIG names the configuration file (framepush run reads it when no
// --config is given); it is not a setting, so Load skips it. Variables of
// the test and build scripts (FRAMEPUSH_CACHE, FRAMEPUSH_SKIP_VM, ...) are
// not settings either and are skipped the same way.
var envNotSettings = map[string]bool{
	EnvPrefix + "CONFIG": true, EnvPrefix + "CACHE": true, EnvPrefix + "SKIP_VM": true,
}

// Loaded is a configuration with the origin of every value that did not
// come from the defaults, so errors can point at it.
type Loaded struct {
	Config
	File   string            // the YAML file, if any
	origin map[string]string // key path -> "file:line", "$VAR" or "--set"
}

// Origin says where the value at a key path (e.g. "trigger.gpio.edge") came
// from, or "default".
func (l *Loaded) Origin(path string) string {
	if o, ok := l.origin[path]; ok {
		return o
	}
	return "default"
}

// Load builds the configuration: defaults, then file (may be ""), then the
// FRAMEPUSH_* variables in env, then sets ("key.path=value"). It validates
// the result and returns every problem found, each with its origin.
func Load(file string, env []string, sets []string) (*Loaded, error) {
	l := &Loaded{Config: Default(), File: file, origin: map[string]string{}}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := l.applyYAML(file, data); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, kv := range env {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || envNotSettings[name] || strings.HasPrefix(name, EnvPrefix+"VM_") || strings.HasPrefix(name, EnvPrefix+"GOARM6_") {
			continue
		}
		path, ok := envPaths()[name]
		if !ok {
			errs = append(errs, fmt.Errorf("config: $%s: no such setting (variables are %s plus the key path in capitals, e.g. %sSERVER_ADDRESSES)", name, EnvPrefix, EnvPrefix))
			continue
		}
		if err := setPath(&l.Config, path, val); err != nil {
			errs = append(errs, fmt.Errorf("config: $%s: %w", name, err))
			continue
		}
		l.origin[path] = "$" + name
	}
	for _, s := range sets {
		path, val, ok := strings.Cut(s, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("config: --set %q: want key.path=value, e.g. --set trigger.fps=5", s))
			continue
		}
		path = strings.TrimSpace(path)
		if err := setPath(&l.Config, path, val); err != nil {
			errs = append(errs, fmt.Errorf("config: --set %s: %w", path, err))
			continue
		}
		l.origin[path] = "--set " + path
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// applyYAML strictly decodes data over the defaults: unknown keys and wrong
// types are errors with file:line.
func (l *Loaded) applyYAML(file string, data []byte) error {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if err.Error() == "EOF" {
			return nil // an empty file means all defaults
		}
		return fmt.Errorf("config: %s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return fmt.Errorf("config: %s:%d: the file must be a mapping of settings (source:, trigger:, server: ...)", file, doc.Line)
	}
	var errs []error
	checkKeys(file, doc, reflect.TypeOf(Config{}), "", l.origin, &errs)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := doc.Decode(&l.Config); err != nil {
		return fmt.Errorf("config: %s", rewriteYAMLError(file, err))
	}
	return nil
}

// checkKeys walks the YAML mapping against the struct type, reporting
// unknown keys with the known ones, and records each key's line.
func checkKeys(file string, n *yaml.Node, t reflect.Type, prefix string, origin map[string]string, errs *[]error) {
	if n.Kind != yaml.MappingNode {
		return
	}
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		f, ok := fields[k.Value]
		if !ok {
			*errs = append(*errs, fmt.Errorf("config: %s:%d: unknown key %q%s (known: %s)", file, k.Line, k.Value, inSection(prefix), strings.Join(sortedKeys(fields), ", ")))
			continue
		}
		origin[path] = fmt.Sprintf("%s:%d", file, v.Line)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct:
			if ft != reflect.TypeOf(ByteSize(0)) {
				if v.Kind != yaml.MappingNode && !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
					*errs = append(*errs, fmt.Errorf("config: %s:%d: %s must be a mapping of settings (known: %s)", file, v.Line, path, strings.Join(sortedKeys(yamlFields(ft)), ", ")))
					continue
				}
				checkKeys(file, v, ft, path, origin, errs)
			}
		case reflect.Map:
			for j := 0; j+1 < len(v.Content); j += 2 {
				origin[path+"."+v.Content[j].Value] = fmt.Sprintf("%s:%d", file, v.Content[j+1].Line)
			}
		}
	}
}

func inSection(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " in " + prefix
}

var lineRE = regexp.MustCompile(`line (\d+): `)

// rewriteYAMLError turns yaml.v3's "line 3: cannot unmarshal !!str `abc`
// into int" into "file:3: ..." lines.
func rewriteYAMLError(file string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	msg = strings.TrimPrefix(msg, "yaml: ")
	var out []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		line = lineRE.ReplaceAllString(line, file+":$1: ")
		line = strings.ReplaceAll(line, "time.Duration", "a duration like 500ms, 10s or 5m")
		line = strings.ReplaceAll(line, sizeTypeName, "a size like 512KiB or 64MiB")
		out = append(out, line)
	}
	return strings.Join(out, "\nconfig: ")
}

// yamlFields maps yaml keys to struct fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Paths lists every settable key path, e.g. "server.addresses".
func Paths() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for _, name := range sortedKeys(yamlFields(t)) {
			f := yamlFields(t)[name]
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			ft := f.Type
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(ByteSize(0)) {
				walk(ft, path)
				continue
			}
			out = append(out, path)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// envPaths maps FRAMEPUSH_* names to key paths.
func envPaths() map[string]string {
	m := map[string]string{}
	for _, p := range Paths() {
		m[EnvName(p)] = p
	}
	return m
}

// EnvName is the environment variable that overrides a key path.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// setPath sets the value at a dotted key path from its text form. Lists take
// YAML flow syntax ([a, b]) or comma-separated items; maps take a last path
// element (source.controls.brightness=10).
func setPath(cfg *Config, path, value string) error {
	v := reflect.ValueOf(cfg).Elem()
	parts := strings.Split(path, ".")
	for i, part := range parts {
		if v.Kind() == reflect.Map {
			if i != len(parts)-1 {
				return fmt.Errorf("unknown setting %q", path)
			}
			elem := reflect.New(v.Type().Elem())
			if err := yaml.Unmarshal([]byte(value), elem.Interface()); err != nil {
				return fmt.Errorf("%q is not a valid value: %s", value, cleanYAML(err))
			}
			if v.IsNil() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			v.SetMapIndex(reflect.ValueOf(part), elem.Elem())
			return nil
		}
		if v.Kind() != reflect.Struct || v.Type() == reflect.TypeOf(ByteSize(0)) {
			return fmt.Errorf("unknown setting %q", path)
		}
		f, ok := yamlFields(v.Type())[part]
		if !ok {
			return fmt.Errorf("unknown setting %q (known in this section: %s)", path, strings.Join(sortedKeys(yamlFields(v.Type())), ", "))
		}
		v = v.FieldByIndex(f.Index)
	}
	target := reflect.New(v.Type())
	text := value
	if v.Kind() == reflect.Slice && !strings.HasPrefix(strings.TrimSpace(value), "[") {
		items := strings.Split(value, ",")
		for i := range items {
			items[i] = strconv.Quote(strings.TrimSpace(items[i]))
		}
		text = "[" + strings.Join(items, ", ") + "]"
	}
	if v.Kind() == reflect.String {
		text = strconv.Quote(value)
	}
	if err := yaml.Unmarshal([]byte(text), target.Interface()); err != nil {
		return fmt.Errorf("%q is not a valid value: %s", value, cleanYAML(err))
	}
	v.Set(target.Elem())
	return nil
}

func cleanYAML(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	s = strings.TrimSpace(lineRE.ReplaceAllString(s, ""))
	s = strings.ReplaceAll(s, "time.Duration", "a duration like 500ms, 10s or 5m")
	s = strings.ReplaceAll(s, sizeTypeName, "a size like 512KiB or 64MiB")
	return s
}

// YAML renders the effective configuration, for `framepush config check`.
func (c Config) YAML() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return "# cannot render: " + err.Error()
	}
	return string(b)
}
