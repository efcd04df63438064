package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

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
		data, err := readFile(file)
		if err != nil {
			return nil, err
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
		l.setOrigin(path, "$"+name)
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
		l.setOrigin(path, "--set "+path)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return l, nil
}

// MaxFileBytes caps a configuration file. A real one is a few KiB; the cap
// keeps a wrong path (a log, an image, a device) from being read whole
// into memory, since yaml.v3 needs several times a document's size.
const MaxFileBytes = 1 << 20

// readFile reads a configuration file of at most MaxFileBytes, refusing a
// larger one before reading it (regular files) or as soon as the cap is
// passed (pipes such as /dev/stdin or <(...)).
func readFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	tooBig := func(size string) error {
		return fmt.Errorf("config: %s: %s, larger than the %d-byte (1 MiB) limit for a configuration file (is it the right file?)", file, size, MaxFileBytes)
	}
	if st, err := f.Stat(); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("config: %s is a directory, not a configuration file", file)
		}
		if st.Mode().IsRegular() && st.Size() > MaxFileBytes {
			return nil, tooBig(fmt.Sprintf("%d bytes", st.Size()))
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", file, err)
	}
	if len(data) > MaxFileBytes {
		return nil, tooBig("more than that")
	}
	return data, nil
}

// setOrigin records that a variable or flag set path, forgetting the file
// lines of the list items it replaced.
func (l *Loaded) setOrigin(path, origin string) {
	for k := range l.origin {
		if strings.HasPrefix(k, path+"[") {
			delete(l.origin, k)
		}
	}
	l.origin[path] = origin
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
		if n, sub, msg := notWhole(v, f.Type); msg != "" {
			*errs = append(*errs, fmt.Errorf("config: %s:%d: %s%s: %s", file, n.Line, path, sub, msg))
			continue
		}
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
		case reflect.Slice:
			// Each item's own line, for errors about one address of a list.
			for j, item := range v.Content {
				origin[fmt.Sprintf("%s[%d]", path, j)] = fmt.Sprintf("%s:%d", file, item.Line)
			}
		}
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

// notWhole finds a fractional number given for a whole-number setting (or
// inside a list or map of them) and says what is wrong with it. yaml.v3
// would silently cut 1.5 to 1 and 640.9 to 640; a number that counts
// pixels or frames must be written whole. Durations are not affected
// (yaml.v3 takes only "500ms"-style strings for them).
// The second result is the map key or list index under the setting, e.g.
// ".brightness" or "[2]".
func notWhole(n *yaml.Node, t reflect.Type) (*yaml.Node, string, string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.AliasNode && n.Alias != nil:
		return notWhole(n.Alias, t)
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			if bad, sub, msg := notWhole(item, t.Elem()); msg != "" {
				return bad, fmt.Sprintf("[%d]%s", i, sub), msg
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for j := 1; j < len(n.Content); j += 2 {
			if bad, sub, msg := notWhole(n.Content[j], t.Elem()); msg != "" {
				return bad, "." + n.Content[j-1].Value + sub, msg
			}
		}
	case n.Kind == yaml.ScalarNode && t != durationType && isInteger(t.Kind()) && n.ShortTag() == "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			return n, "", fmt.Sprintf("%s is not a whole number (this setting takes an integer, e.g. %d)", n.Value, int64(math.Max(1, math.Round(orZero(f)))))
		}
	}
	return nil, "", ""
}

func orZero(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
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
			if err := decodeValue(value, value, elem); err != nil {
				return err
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
	if err := decodeValue(text, value, target); err != nil {
		return err
	}
	v.Set(target.Elem())
	return nil
}

// decodeValue decodes the YAML text of one value (shown as given) into
// target (a pointer), refusing fractional numbers for whole-number settings
// as the file does.
func decodeValue(text, shown string, target reflect.Value) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return fmt.Errorf("%q is not a valid value: %s", shown, cleanYAML(err))
	}
	if len(doc.Content) == 0 { // empty text: the zero value
		target.Elem().Set(reflect.Zero(target.Elem().Type()))
		return nil
	}
	if _, _, msg := notWhole(doc.Content[0], target.Elem().Type()); msg != "" {
		return errors.New(msg)
	}
	if err := doc.Content[0].Decode(target.Interface()); err != nil {
		return fmt.Errorf("%q is not a valid value: %s", shown, cleanYAML(err))
	}
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
