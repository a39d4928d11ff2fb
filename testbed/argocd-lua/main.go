// Command argocd-lua runs Argo CD resource customizations (health checks and resource actions) the way Argo
// CD runs them, and tests them the way Argo CD tests its own resource_customizations tree.
//
// Argo CD (util/lua/lua.go) runs each script in a gopher-lua state with the standard libraries closed unless
// the customization sets useOpenLibs, then opens the package, base and table libraries and a "safe" os
// library of os.time and os.date only; it preloads that os library for require("os"), sets the object as the
// global `obj`, and gives the script one second. Scripts registered in argocd-cm run exactly so (useOpenLibs
// defaults to false): no string, math or io library. This harness does the same, so a script that calls
// string.format, or os.exit, fails here as it would in Argo CD. It was written for the Kappa Operator; no
// Argo CD code is copied, only its behaviour matched.
//
// Usage:
//
//	argocd-lua test DIR        run every health_test.yaml and actions/action_test.yaml under DIR
//	argocd-lua health DIR OBJ  print the health of the object in OBJ (YAML) by DIR's health.lua
//	argocd-lua configmap DIR   print an argocd-cm merge patch with the entries of every kind under DIR
//
// test exits 0 when every test passes, 1 on any mismatch (each printed with what differs), 2 on bad input.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// Options of one script run.
type runner struct {
	openLibs bool          // Argo CD's useOpenLibs: all of gopher-lua's standard libraries
	now      time.Time     // what os.time and os.date see; fixed in tests so that action outputs compare
	timeout  time.Duration // Argo CD gives a script one second
}

var healthCodes = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true,
}

// run executes script over obj and returns the value it returned.
func (r runner) run(obj map[string]any, script string) (lua.LValue, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !r.openLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, r.openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, fmt.Errorf("opening %s: %w", lib.name, err)
		}
	}
	l.PreloadModule(lua.OsLibName, r.safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	return l.Get(-1), nil
}

// The safe os library. Argo CD's opener registers these functions under the name of the table library, not
// "os", so that the global `os` stays undefined and a script must `local os = require("os")`: the same here.
func (r runner) osFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{"time": r.osTime, "date": r.osDate}
}

func (r runner) openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, r.osFuncs()))
	return 1
}

func (r runner) safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), r.osFuncs()))
	return 1
}

func (r runner) osTime(l *lua.LState) int {
	if l.GetTop() == 0 {
		l.Push(lua.LNumber(r.now.Unix()))
		return 1
	}
	t := l.CheckTable(1)
	field := func(name string, dflt int) int {
		if n, ok := t.RawGetString(name).(lua.LNumber); ok {
			return int(n)
		}
		return dflt
	}
	at := time.Date(field("year", -1), time.Month(field("month", -1)), field("day", -1),
		field("hour", 12), field("min", 0), field("sec", 0), 0, time.Local)
	l.Push(lua.LNumber(at.Unix()))
	return 1
}

func (r runner) osDate(l *lua.LState) int {
	at := r.now.Local()
	format := "%c"
	if l.GetTop() >= 1 {
		format = l.CheckString(1)
		if strings.HasPrefix(format, "!") {
			at = at.UTC()
			format = strings.TrimLeft(format, "!")
		}
		if l.GetTop() >= 2 {
			at = time.Unix(l.CheckInt64(2), 0)
		}
		if strings.HasPrefix(format, "*t") {
			t := l.NewTable()
			for k, v := range map[string]int{
				"year": at.Year(), "month": int(at.Month()), "day": at.Day(), "hour": at.Hour(),
				"min": at.Minute(), "sec": at.Second(), "wday": int(at.Weekday()) + 1, "yday": 0,
			} {
				t.RawSetString(k, lua.LNumber(v))
			}
			t.RawSetString("isdst", lua.LFalse)
			l.Push(t)
			return 1
		}
	}
	l.Push(lua.LString(strftime(at, format)))
	return 1
}

// The conversions Argo CD's os.date knows; any other %x is kept as written.
var strftimeLayouts = map[byte]string{
	'a': "Mon", 'A': "Monday", 'b': "Jan", 'B': "January", 'c': "02 Jan 06 15:04 MST", 'd': "02",
	'F': "2006-01-02", 'H': "15", 'I': "03", 'm': "01", 'M': "04", 'p': "PM", 'P': "pm", 'S': "05",
	'x': "15/04/05", 'X': "15:04:05", 'y': "06", 'Y': "2006", 'z': "-0700", 'Z': "MST",
}

func strftime(at time.Time, format string) string {
	var out strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i == len(format)-1 {
			out.WriteByte(c)
			continue
		}
		i++
		switch spec := format[i]; {
		case spec == '%':
			out.WriteByte('%')
		case spec == 'w':
			out.WriteString(fmt.Sprint(int(at.Weekday())))
		case strftimeLayouts[spec] != "":
			out.WriteString(at.Format(strftimeLayouts[spec]))
		default:
			out.WriteByte('%')
			out.WriteByte(spec)
		}
	}
	return out.String()
}

// toLua converts a decoded YAML/JSON object into Lua values, as Argo CD hands `obj` to a script.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(l, item))
		}
		return t
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetH(lua.LString(key), toLua(l, item))
		}
		return t
	}
	return lua.LNil
}

// fromLua encodes a returned table as Argo CD does (gopher-json) and decodes it into Go values.
func fromLua(value lua.LValue) (any, error) {
	if value.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", value.Type())
	}
	raw, err := luajson.Encode(value)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(raw, &out)
	return out, err
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func (r runner) health(obj map[string]any, script string) (health, error) {
	value, err := r.run(obj, script)
	if err != nil {
		return health{}, err
	}
	decoded, err := fromLua(value)
	if err != nil {
		return health{}, err
	}
	raw, _ := json.Marshal(decoded)
	var h health
	if err := json.Unmarshal(raw, &h); err != nil {
		return health{}, err
	}
	if !healthCodes[h.Status] {
		return health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return h, nil
}

type resourceAction struct {
	Name        string `json:"name"`
	Disabled    bool   `json:"disabled,omitempty"`
	IconClass   string `json:"iconClass,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

func (r runner) discover(obj map[string]any, script string) ([]resourceAction, error) {
	value, err := r.run(obj, script)
	if err != nil {
		return nil, err
	}
	decoded, err := fromLua(value)
	if err != nil {
		return nil, err
	}
	actions := []resourceAction{}
	byName, ok := decoded.(map[string]any)
	if !ok { // an empty table encodes as [] : no actions
		return actions, nil
	}
	for name, def := range byName {
		action := resourceAction{Name: name}
		if fields, ok := def.(map[string]any); ok {
			raw, _ := json.Marshal(fields)
			if err := json.Unmarshal(raw, &action); err != nil {
				return nil, fmt.Errorf("action %s: %w", name, err)
			}
			action.Name = name
		}
		actions = append(actions, action)
	}
	sort.Slice(actions, func(i, j int) bool { return actions[i].Name < actions[j].Name })
	return actions, nil
}

// act runs an action and returns the object to patch, as an old-style action (the object) or the "patch"
// entry of a new-style one (a list of {resource, operation}).
func (r runner) act(obj map[string]any, script string) (map[string]any, error) {
	value, err := r.run(obj, script)
	if err != nil {
		return nil, err
	}
	decoded, err := fromLua(value)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	switch v := decoded.(type) {
	case map[string]any:
		out = v
	case []any:
		for _, item := range v {
			entry, _ := item.(map[string]any)
			if entry["operation"] == "patch" {
				out, _ = entry["resource"].(map[string]any)
			}
		}
		if out == nil {
			return nil, errors.New("the action returned no resource to patch")
		}
	}
	return keepEmptyMaps(out, obj), nil
}

// keepEmptyMaps undoes what the Lua round trip does to empty maps: an empty table encodes as [], so a field
// that was a map comes back []. Argo CD makes such a field {} again before patching (a map emptied by the
// script stays empty).
func keepEmptyMaps(returned, original map[string]any) map[string]any {
	for key, was := range original {
		now, ok := returned[key]
		if !ok {
			continue
		}
		switch nv := now.(type) {
		case map[string]any:
			if ov, ok := was.(map[string]any); ok {
				returned[key] = keepEmptyMaps(nv, ov)
			}
		case []any:
			switch ov := was.(type) {
			case map[string]any:
				if len(nv) == 0 {
					returned[key] = map[string]any{}
				}
			case []any:
				for i := 0; i < len(nv) && i < len(ov); i++ {
					if nm, ok := nv[i].(map[string]any); ok {
						if om, ok := ov[i].(map[string]any); ok {
							nv[i] = keepEmptyMaps(nm, om)
						}
					}
				}
			}
		}
	}
	return returned
}

// diffs lists where got and want differ, one path each. An empty map and no value are the same to the API
// server, and to this comparison.
func diffs(path string, got, want any) []string {
	if isEmptyMap(got) && want == nil || got == nil && isEmptyMap(want) {
		return nil
	}
	gm, gok := got.(map[string]any)
	wm, wok := want.(map[string]any)
	if gok && wok {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		var out []string
		for _, k := range names {
			out = append(out, diffs(path+"."+k, gm[k], wm[k])...)
		}
		return out
	}
	gl, gok := got.([]any)
	wl, wok := want.([]any)
	if gok && wok && len(gl) == len(wl) {
		var out []string
		for i := range gl {
			out = append(out, diffs(fmt.Sprintf("%s[%d]", path, i), gl[i], wl[i])...)
		}
		return out
	}
	if reflect.DeepEqual(got, want) {
		return nil
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	return []string{fmt.Sprintf("%s: got %s, want %s", strings.TrimPrefix(path, "."), g, w)}
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

func readYAML(path string, into any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// sigs.k8s.io/yaml converts to JSON first: numbers come back as float64, as from the Lua side.
	if err := yaml.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readObject(path string) (map[string]any, error) {
	obj := map[string]any{}
	return obj, readYAML(path, &obj)
}

func readScript(path string) (string, error) {
	raw, err := os.ReadFile(path)
	return string(raw), err
}

type healthTests struct {
	Tests []struct {
		InputPath    string `json:"inputPath"`
		HealthStatus health `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []resourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

type report struct {
	passed, failed int
}

func (rep *report) check(name string, problems []string, err error) {
	if err != nil {
		problems = append(problems, "error: "+err.Error())
	}
	if len(problems) == 0 {
		rep.passed++
		fmt.Printf("ok   %s\n", name)
		return
	}
	rep.failed++
	fmt.Printf("FAIL %s\n", name)
	for _, p := range problems {
		fmt.Printf("     %s\n", p)
	}
}

func (r runner) testHealth(root, dir string, rep *report) error {
	script, err := readScript(filepath.Join(dir, "health.lua"))
	if err != nil {
		return err
	}
	var tests healthTests
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &tests); err != nil {
		return err
	}
	if len(tests.Tests) == 0 {
		return fmt.Errorf("%s: health.lua has no tests in health_test.yaml", dir)
	}
	rel, _ := filepath.Rel(root, dir)
	for _, test := range tests.Tests {
		name := filepath.Join(rel, "health", test.InputPath)
		obj, err := readObject(filepath.Join(dir, test.InputPath))
		if err != nil {
			rep.check(name, nil, err)
			continue
		}
		got, err := r.health(obj, script)
		var problems []string
		if err == nil && got != test.HealthStatus {
			problems = append(problems, fmt.Sprintf("got    %s %q", got.Status, got.Message),
				fmt.Sprintf("want   %s %q", test.HealthStatus.Status, test.HealthStatus.Message))
		}
		rep.check(name, problems, err)
	}
	return nil
}

func (r runner) testActions(root, dir string, rep *report) error {
	var tests actionTests
	if err := readYAML(filepath.Join(dir, "action_test.yaml"), &tests); err != nil {
		return err
	}
	rel, _ := filepath.Rel(root, dir)
	discovery, err := readScript(filepath.Join(dir, "discovery.lua"))
	if err != nil {
		return err
	}
	for _, test := range tests.DiscoveryTests {
		name := filepath.Join(rel, "discovery", test.InputPath)
		obj, err := readObject(filepath.Join(dir, test.InputPath))
		if err != nil {
			rep.check(name, nil, err)
			continue
		}
		got, err := r.discover(obj, discovery)
		want := append([]resourceAction{}, test.Result...)
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		var problems []string
		if err == nil && !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			problems = append(problems, "got    "+string(g), "want   "+string(w))
		}
		rep.check(name, problems, err)
	}
	for _, test := range tests.ActionTests {
		name := filepath.Join(rel, test.Action, test.InputPath)
		var problems []string
		script, err := readScript(filepath.Join(dir, test.Action, "action.lua"))
		var obj, want, got map[string]any
		if err == nil {
			obj, err = readObject(filepath.Join(dir, test.InputPath))
		}
		if err == nil {
			want, err = readObject(filepath.Join(dir, test.ExpectedOutputPath))
		}
		if err == nil {
			got, err = r.act(obj, script)
		}
		if err == nil {
			problems = diffs("", any(got), any(want))
		}
		rep.check(name, problems, err)
	}
	return nil
}

func cmdTest(r runner, root string) int {
	rep := &report{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch d.Name() {
		case "health.lua":
			return r.testHealth(root, filepath.Dir(path), rep)
		case "action_test.yaml":
			return r.testActions(root, filepath.Dir(path), rep)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		return 2
	}
	fmt.Printf("%d passed, %d failed\n", rep.passed, rep.failed)
	if rep.passed == 0 {
		fmt.Fprintln(os.Stderr, "argocd-lua: no tests found under", root)
		return 2
	}
	if rep.failed > 0 {
		return 1
	}
	return 0
}

func cmdHealth(r runner, dir, objPath string) int {
	script, err := readScript(filepath.Join(dir, "health.lua"))
	if err == nil {
		var obj map[string]any
		if obj, err = readObject(objPath); err == nil {
			var h health
			if h, err = r.health(obj, script); err == nil {
				out, _ := json.Marshal(h)
				fmt.Println(string(out))
				return 0
			}
		}
	}
	fmt.Fprintln(os.Stderr, "argocd-lua:", err)
	return 2
}

// indent prefixes every non-empty line.
func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, line := range lines {
		if line != "" {
			lines[i] = prefix + line
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// cmdConfigMap prints an argocd-cm merge patch with resource.customizations.health.<group>_<Kind> and
// resource.customizations.actions.<group>_<Kind> for every kind under root, in the order of the tree.
func cmdConfigMap(root string) int {
	var out strings.Builder
	out.WriteString("# Generated from " + filepath.ToSlash(root) + " by `argocd-lua configmap`. Do not edit: edit the Lua\n" +
		"# files, then: $(bash testbed/build-argocd-lua.sh) configmap " + filepath.ToSlash(root) + " \\\n" +
		"#   > manifests/argocd/argocd-cm-patch.yaml\n" +
		"# Merge it into Argo CD's argocd-cm:\n" +
		"#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file manifests/argocd/argocd-cm-patch.yaml\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n")
	groups, err := os.ReadDir(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua:", err)
		return 2
	}
	for _, group := range groups {
		if !group.IsDir() {
			continue
		}
		kinds, _ := os.ReadDir(filepath.Join(root, group.Name()))
		for _, kind := range kinds {
			dir := filepath.Join(root, group.Name(), kind.Name())
			key := group.Name() + "_" + kind.Name()
			if script, err := readScript(filepath.Join(dir, "health.lua")); err == nil {
				fmt.Fprintf(&out, "  resource.customizations.health.%s: |\n%s", key, indent(script, "    "))
			}
			discovery, err := readScript(filepath.Join(dir, "actions", "discovery.lua"))
			if err != nil {
				continue
			}
			fmt.Fprintf(&out, "  resource.customizations.actions.%s: |\n    discovery.lua: |\n%s    definitions:\n",
				key, indent(discovery, "      "))
			actions, _ := os.ReadDir(filepath.Join(dir, "actions"))
			for _, action := range actions {
				script, err := readScript(filepath.Join(dir, "actions", action.Name(), "action.lua"))
				if err != nil {
					continue
				}
				fmt.Fprintf(&out, "    - name: %s\n      action.lua: |\n%s", action.Name(), indent(script, "        "))
			}
		}
	}
	fmt.Print(out.String())
	return 0
}

func main() {
	flags := flag.NewFlagSet("argocd-lua", flag.ExitOnError)
	openLibs := flags.Bool("open-libs", false, "open all standard libraries, as useOpenLibs: true does")
	now := flags.String("now", "2026-01-02T03:04:05Z", "the time os.time and os.date see (RFC 3339)")
	flags.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua [flags] test DIR | health KINDDIR OBJECT.yaml | configmap DIR")
		flags.PrintDefaults()
	}
	_ = flags.Parse(os.Args[1:])
	at, err := time.Parse(time.RFC3339, *now)
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-lua: -now:", err)
		os.Exit(2)
	}
	r := runner{openLibs: *openLibs, now: at, timeout: time.Second}
	args := flags.Args()
	switch {
	case len(args) == 2 && args[0] == "test":
		os.Exit(cmdTest(r, args[1]))
	case len(args) == 3 && args[0] == "health":
		os.Exit(cmdHealth(r, args[1], args[2]))
	case len(args) == 2 && args[0] == "configmap":
		os.Exit(cmdConfigMap(args[1]))
	}
	flags.Usage()
	os.Exit(2)
}
