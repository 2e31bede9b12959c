package inventory

import (
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The patterns of Ansible's INI inventory plugin (plugins/inventory/ini.py).
var (
	reSection   = regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
	reGroupName = regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
)

// iniLine is one meaningful line of an INI inventory, parsed but not applied.
type iniLine struct {
	line   int
	header bool   // a [group] or [group:state] line
	group  string // the section's group
	state  string // hosts, vars or children
	hosts  []string
	port   int
	vars   []iniVar // host vars, or the one var of a :vars line
	child  string
}

type iniVar struct {
	key string
	val any
}

// parseINI reads an INI inventory as Ansible's INI plugin does, stopping at
// the first bad line as Ansible does. Nothing is added to an inventory yet,
// so a file that is not INI after all leaves no trace.
func parseINI(path string, data []byte) ([]iniLine, error) {
	var out []iniLine
	group, state := "ungrouped", "hosts"
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		fail := func(subject, format string, args ...any) error {
			return &Error{Pos: Pos{path, n}, Subject: subject, Msg: fmt.Sprintf(format, args...)}
		}
		if !utf8.ValidString(line) {
			return nil, fail("", "not valid UTF-8")
		}
		if m := reSection.FindStringSubmatch(line); m != nil {
			group, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if !slices.Contains([]string{"hosts", "vars", "children"}, state) {
				return nil, fail("", "section [%s:%s] has unknown type %q (want hosts, vars or children)", m[1], m[2], m[2])
			}
			out = append(out, iniLine{line: n, header: true, group: group, state: state})
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			return nil, fail("", "invalid section entry %q: no spaces or other invalid characters allowed in a section name", line)
		}
		subject := fmt.Sprintf("group %q", group)
		switch state {
		case "hosts":
			l, err := parseINIHost(line)
			if err != nil {
				return nil, fail(subject, "%v", err)
			}
			l.line, l.group, l.state = n, group, state
			out = append(out, l)
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fail(subject, "expected key=value, got %q", line)
			}
			val, err := iniValue(strings.TrimSpace(v))
			if err != nil {
				return nil, fail(subject, "%s: %v", strings.TrimSpace(k), err)
			}
			out = append(out, iniLine{line: n, group: group, state: state, vars: []iniVar{{strings.TrimSpace(k), val}}})
		case "children":
			m := reGroupName.FindStringSubmatch(line)
			if m == nil {
				return nil, fail(subject, "expected a group name, got %q", line)
			}
			out = append(out, iniLine{line: n, group: group, state: state, child: m[1]})
		}
	}
	return out, nil
}

// parseINIHost reads `pattern key=value ...` with Ansible's shlex rules.
func parseINIHost(line string) (iniLine, error) {
	tokens, err := shlexSplit(line)
	if err != nil {
		return iniLine{}, fmt.Errorf("host definition %q: %v", line, err)
	}
	if len(tokens) == 0 {
		return iniLine{}, fmt.Errorf("host definition %q: no host name", line)
	}
	pattern := tokens[0]
	hosts, port, err := expandHostPattern(pattern)
	if err != nil {
		return iniLine{}, fmt.Errorf("host %q: %v", pattern, err)
	}
	if strings.HasSuffix(strings.TrimSpace(pattern), ":") && port == 0 {
		return iniLine{}, fmt.Errorf("host %q: a trailing ':' must be followed by a port", pattern)
	}
	if slices.Contains(hosts, "---") {
		return iniLine{}, fmt.Errorf("host %q: '---' is a sign this is a YAML file", pattern)
	}
	l := iniLine{hosts: hosts, port: port}
	for _, t := range tokens[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return iniLine{}, fmt.Errorf("host %q: expected key=value host variable, got %q", pattern, t)
		}
		val, err := iniValue(v)
		if err != nil {
			return iniLine{}, fmt.Errorf("host %q: %s: %v", pattern, k, err)
		}
		l.vars = append(l.vars, iniVar{k, val})
	}
	return l, nil
}

// pendingGroup is a group named by [x:vars] or under [y:children] before
// its own section: Ansible requires that section later in the same file.
type pendingGroup struct {
	line    int
	state   string
	parents []string
}

// iniApply adds parsed INI lines to the builder in Ansible's order.
func (b *builder) iniApply(path string, lines []iniLine) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		b.fail(fmt.Errorf("inventory: %s: %w", path, err))
		return
	}
	d := &doc{file: path, dir: dir}
	pending := map[string]*pendingGroup{}
	var order []string
	var resolve func(string)
	resolve = func(group string) {
		pg := pending[group]
		delete(pending, group)
		for _, parent := range pg.parents {
			b.addChild(parent, group, d, lineNode(pg.line))
			if pp := pending[parent]; pp != nil && pp.state == "children" {
				resolve(parent)
			}
		}
	}
	for _, l := range lines {
		at := lineNode(l.line)
		switch {
		case l.header:
			if b.byName[l.group] == nil {
				if l.state == "vars" && pending[l.group] == nil {
					pending[l.group] = &pendingGroup{line: l.line, state: "vars"}
					order = append(order, l.group)
				}
				b.group(l.group, d.pos(at))
			}
			if pg := pending[l.group]; pg != nil && l.state != "vars" {
				if pg.state == "children" {
					resolve(l.group)
				} else {
					delete(pending, l.group)
				}
			}
		case l.state == "hosts":
			for _, name := range l.hosts {
				hd := b.host(name, d.pos(at), l.port)
				b.addHost(l.group, hd)
				for _, v := range l.vars {
					b.storeVar(d, fmt.Sprintf("host %q", name), hd.vars, hd.varPos, hd.settings, iniPair(v, l.line), v.val)
				}
			}
		case l.state == "vars":
			v := l.vars[0]
			gd := b.byName[l.group]
			if v.key == "ansible_group_priority" {
				prio, ok := pythonInt(v.val)
				if !ok {
					b.fail(&Error{Pos: d.pos(at), Subject: fmt.Sprintf("group %q", l.group), Msg: "ansible_group_priority must be an integer"})
					continue
				}
				gd.g.Priority = prio
				continue
			}
			b.storeVar(d, fmt.Sprintf("group %q", l.group), gd.g.Vars, gd.varPos, gd.settings, iniPair(v, l.line), v.val)
		case l.state == "children":
			if b.byName[l.child] != nil {
				b.addChild(l.group, l.child, d, at)
				continue
			}
			if pending[l.child] == nil {
				pending[l.child] = &pendingGroup{line: l.line, state: "children"}
				order = append(order, l.child)
			}
			pending[l.child].parents = append(pending[l.child].parents, l.group)
		}
	}
	for _, g := range order {
		pg := pending[g]
		if pg == nil {
			continue
		}
		pos := Pos{path, pg.line}
		if pg.state == "vars" {
			b.fail(&Error{Pos: pos, Subject: fmt.Sprintf("group %q", g), Msg: fmt.Sprintf("section [%s:vars] for a group with no [%s] or [%s:children] section in this file", g, g, g)})
		} else {
			parent := pg.parents[len(pg.parents)-1]
			b.fail(&Error{Pos: pos, Subject: fmt.Sprintf("group %q", parent), Msg: fmt.Sprintf("[%s:children] names group %q, which has no section in this file", parent, g)})
		}
		return // Ansible reports the first only
	}
}

// pythonInt is Python's int(v) for the values an INI file can hold.
func pythonInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case bool:
		return map[bool]int{true: 1}[v], true
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return 0, false
		}
		return int(v), true
	case string:
		i, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(v), "_", ""))
		return i, err == nil
	}
	return 0, false
}

func lineNode(line int) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Line: line} }

// iniPair dresses an INI value as a YAML node, so haltfleet_ settings are
// validated by the same code, with the same messages, as in YAML files.
func iniPair(v iniVar, line int) pair {
	return pair{key: v.key, k: lineNode(line), v: valueNode(v.val, line)}
}

func valueNode(v any, line int) *yaml.Node {
	scalar := func(tag, val string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.TaggedStyle, Tag: tag, Value: val, Line: line}
	}
	switch v := v.(type) {
	case nil:
		return scalar("!!null", "null")
	case bool:
		return scalar("!!bool", strconv.FormatBool(v))
	case int:
		return scalar("!!int", strconv.Itoa(v))
	case *big.Int:
		return scalar("!!str", v.String())
	case float64:
		switch {
		case math.IsNaN(v):
			return scalar("!!float", ".nan")
		case math.IsInf(v, 1):
			return scalar("!!float", ".inf")
		case math.IsInf(v, -1):
			return scalar("!!float", "-.inf")
		}
		return scalar("!!float", strconv.FormatFloat(v, 'f', -1, 64))
	case string:
		// Plain, as if written unquoted in YAML: INI text such as
		// haltfleet_halt=false reaches the settings as the boolean it reads as.
		return &yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: line}
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Line: line}
		for _, e := range v {
			n.Content = append(n.Content, valueNode(e, line))
		}
		return n
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Line: line}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			n.Content = append(n.Content, scalar("!!str", k), valueNode(v[k], line))
		}
		return n
	}
	return scalar("!!str", fmt.Sprint(v))
}
