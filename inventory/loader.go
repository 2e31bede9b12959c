package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

const maxErrors = 50 // enough to fix a file in one go, not a flood

// builder accumulates groups and hosts from one or more files, the way
// Ansible's InventoryData does, then reconciles them in finish.
type builder struct {
	inv    *Inventory
	groups []*groupDef // creation order
	byName map[string]*groupDef
	hosts  map[string]*hostDef
	errs   []error
	seen   map[string]bool

	varsDirs     []string          // where to look for group_vars/ and host_vars/, in -i order
	layers       map[string]*layer // vars files already read, by directory and name
	files, bytes int               // read so far, against maxFiles and maxTotalSize
}

type groupDef struct {
	g        *Group
	members  map[string]bool // g.Hosts as a set: ranges make big groups
	varPos   map[string]Pos
	settings map[string]setting
	files    []*layer // group_vars/ per entry of varsDirs, nil where none
}

type hostDef struct {
	h        *Host
	vars     map[string]any // host's own vars
	varPos   map[string]Pos
	settings map[string]setting
	direct   []string // groups the host was added to
	files    []*layer // host_vars/ per entry of varsDirs, nil where none
}

func newBuilder(path string) *builder {
	b := &builder{
		inv:    &Inventory{Path: path, Dir: filepath.Dir(path), Groups: map[string]*Group{}, byName: map[string]*Host{}},
		byName: map[string]*groupDef{},
		hosts:  map[string]*hostDef{},
		seen:   map[string]bool{},
		layers: map[string]*layer{},
	}
	b.group("all", Pos{})
	b.group("ungrouped", Pos{})
	b.addChild("all", "ungrouped", nil, nil)
	return b
}

func (b *builder) fail(err error) {
	if err == nil || b.seen[err.Error()] || len(b.errs) >= maxErrors {
		return
	}
	b.seen[err.Error()] = true
	b.errs = append(b.errs, err)
}

func (b *builder) failed() bool { return len(b.errs) > 0 }

// file parses one inventory file into the builder: YAML (JSON included) when
// it reads as a mapping, else INI, as Ansible's yaml then ini plugins try it.
func (b *builder) file(path string, data []byte) { b.source(path, data, false) }

// source is file for an inventory file; in a directory (optional), a file that
// is neither YAML nor INI and has no [section] line is skipped, as Ansible
// skips it with a warning, and source reports false.
func (b *builder) source(path string, data []byte, optional bool) bool {
	if len(data) > maxFileSize {
		b.fail(&Error{Pos: Pos{path, 0}, Msg: fmt.Sprintf("file larger than %d bytes", maxFileSize)})
		return true
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		b.fail(fmt.Errorf("inventory: %s: %w", path, err))
		return true
	}
	ext := filepath.Ext(path)
	yamlExt := slices.Contains([]string{".yml", ".yaml", ".json"}, ext)
	var yamlErr error
	yamlText := false // YAML read it, as text: an INI error says more
	if yamlExt || ext == "" {
		d := &doc{src: data, file: path, dir: dir, json: json.Valid(data)}
		top, alias, emptyAt, err := decodeMapping(d, data, "inventory must be a mapping of groups")
		switch {
		case err != nil:
			yamlErr = err
			yamlText = top != nil && top.Kind == yaml.ScalarNode
		case top == nil:
			yamlErr = &Error{Pos: Pos{path, emptyAt}, Msg: "empty inventory"}
		default:
			b.yamlInventory(d, top, alias)
			return true
		}
	}
	lines, iniErr := parseINI(path, data)
	switch {
	case iniErr == nil && len(lines) > 0:
		b.iniApply(path, lines)
	case iniErr == nil && optional && !yamlExt:
		// Blank or comments only: Ansible's INI plugin reads it as nothing.
	case optional && !yamlExt && !looksINI(data):
		return false
	case yamlErr != nil && !yamlText && !looksINI(data):
		b.fail(yamlErr)
	case iniErr != nil:
		b.fail(iniErr)
	default:
		b.fail(&Error{Pos: Pos{path, 0}, Msg: "empty inventory"})
	}
	return true
}

// looksINI reports a [section] line, which no YAML inventory has.
func looksINI(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		if reSection.MatchString(strings.TrimSpace(line)) {
			return true
		}
	}
	return false
}

// decodeMapping reads a single YAML document whose top is a mapping; notMap
// words the error for other tops. An empty document gives a nil top and the
// line where it is empty. Another top comes back with the error.
func decodeMapping(d *doc, data []byte, notMap string) (*yaml.Node, bool, int, error) {
	if d.json {
		top, err := jsonNode(data)
		if err != nil {
			return nil, false, 0, &Error{Pos: Pos{d.file, 0}, Msg: "JSON: " + err.Error()}
		}
		return checkTop(d, top, false, notMap)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, 0, nil
		}
		line, msg := yamlErr(err)
		return nil, false, 0, &Error{Pos: Pos{d.file, line}, Msg: msg}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := 0
		if err == nil {
			line = extra.Line
		}
		return nil, false, 0, &Error{Pos: Pos{d.file, line}, Msg: "more than one YAML document"}
	}
	top, alias, err := d.deref(root.Content[0], false)
	if err != nil {
		return nil, false, 0, err
	}
	return checkTop(d, top, alias, notMap)
}

func checkTop(d *doc, top *yaml.Node, alias bool, notMap string) (*yaml.Node, bool, int, error) {
	if isNull(top) {
		return nil, false, top.Line, nil
	}
	if top.Kind != yaml.MappingNode {
		return top, false, 0, d.errorf(top, "", "%s, got %s", notMap, kindName(top))
	}
	return top, alias, 0, nil
}

// yamlInventory reads the groups of a YAML inventory's top mapping.
func (b *builder) yamlInventory(d *doc, top *yaml.Node, alias bool) {
	ps, err := d.pairs(top, alias, 1)
	if err != nil {
		b.fail(err)
		return
	}
	for _, p := range ps {
		b.parseGroup(d, p, 1)
	}
}

// parseGroup reads `name: {hosts, children, vars}` and returns the group name.
func (b *builder) parseGroup(d *doc, p pair, depth int) string {
	name, subject := p.key, fmt.Sprintf("group %q", p.key)
	if name == "" {
		b.fail(d.errorf(p.k, "", "empty group name"))
		return ""
	}
	gd := b.group(name, d.pos(p.k))
	v, alias, err := d.deref(p.v, p.alias)
	if err != nil || isNull(v) {
		b.fail(err)
		return name
	}
	if v.Kind != yaml.MappingNode {
		b.fail(d.errorf(v, subject, "want a mapping with hosts, children or vars, got %s", kindName(v)))
		return name
	}
	sections, err := d.pairs(v, alias, depth)
	if err != nil {
		b.fail(err)
		return name
	}
	for _, s := range sections {
		sv, sAlias, err := d.deref(s.v, s.alias)
		if err != nil {
			b.fail(err)
			continue
		}
		if isNull(sv) {
			continue
		}
		switch s.key {
		case "vars":
			if sv.Kind != yaml.MappingNode {
				b.fail(d.errorf(sv, subject, "vars must be a mapping, got %s", kindName(sv)))
				continue
			}
			b.eachPair(d, sv, sAlias, depth+1, func(vp pair) { b.setGroupVar(d, gd, vp) })
		case "children":
			b.members(d, sv, sAlias, depth+1, subject, "children", func(cp pair) {
				if child := b.parseGroup(d, cp, depth+2); child != "" {
					b.addChild(name, child, d, cp.k)
				}
			})
		case "hosts":
			b.members(d, sv, sAlias, depth+1, subject, "hosts", func(hp pair) { b.parseHosts(d, name, hp, depth+2) })
		default:
			b.fail(d.errorf(s.k, subject, "unknown key %q (want hosts, children or vars)", s.key))
		}
	}
	return name
}

// members walks hosts: or children:, which Ansible accepts as a mapping or a single name.
func (b *builder) members(d *doc, n *yaml.Node, alias bool, depth int, subject, section string, each func(pair)) {
	switch n.Kind {
	case yaml.ScalarNode:
		each(pair{key: n.Value, k: n, v: &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line}, alias: alias})
	case yaml.MappingNode:
		b.eachPair(d, n, alias, depth, each)
	default:
		b.fail(d.errorf(n, subject, "%s must be a mapping, got %s", section, kindName(n)))
	}
}

func (b *builder) eachPair(d *doc, n *yaml.Node, alias bool, depth int, each func(pair)) {
	ps, err := d.pairs(n, alias, depth)
	if err != nil {
		b.fail(err)
		return
	}
	for _, p := range ps {
		each(p)
	}
}

func (b *builder) parseHosts(d *doc, group string, p pair, depth int) {
	names, port, err := expandHostPattern(p.key)
	if err != nil {
		b.fail(d.errorf(p.k, fmt.Sprintf("group %q", group), "host %q: %v", p.key, err))
		return
	}
	v, alias, err := d.deref(p.v, p.alias)
	if err != nil {
		b.fail(err)
		return
	}
	var vars []pair
	if !isNull(v) {
		if v.Kind != yaml.MappingNode {
			b.fail(d.errorf(v, fmt.Sprintf("host %q", p.key), "host vars must be a mapping, got %s", kindName(v)))
			return
		}
		if vars, err = d.pairs(v, alias, depth); err != nil {
			b.fail(err)
			return
		}
	}
	for _, name := range names {
		hd := b.host(name, d.pos(p.k), port)
		b.addHost(group, hd)
		for _, vp := range vars {
			b.setHostVar(d, hd, vp)
		}
	}
}

func (b *builder) group(name string, pos Pos) *groupDef {
	if gd := b.byName[name]; gd != nil {
		if gd.g.Pos == (Pos{}) {
			gd.g.Pos = pos
		}
		return gd
	}
	gd := &groupDef{g: &Group{Name: name, Vars: map[string]any{}, Pos: pos, Priority: 1}, members: map[string]bool{}, varPos: map[string]Pos{}, settings: map[string]setting{}}
	b.groups = append(b.groups, gd)
	b.byName[name] = gd
	b.inv.Groups[name] = gd.g
	return gd
}

func (b *builder) host(name string, pos Pos, port int) *hostDef {
	if hd := b.hosts[name]; hd != nil {
		return hd
	}
	hd := &hostDef{h: &Host{Name: name, Pos: pos}, vars: map[string]any{}, varPos: map[string]Pos{}, settings: map[string]setting{}}
	if port > 0 { // Ansible takes the port from the first mention only
		hd.vars["ansible_port"] = port
		hd.varPos["ansible_port"] = pos
	}
	b.hosts[name] = hd
	b.inv.Hosts = append(b.inv.Hosts, hd.h)
	b.inv.byName[name] = hd.h
	return hd
}

func (b *builder) addHost(group string, hd *hostDef) {
	gd := b.byName[group]
	if !gd.members[hd.h.Name] {
		gd.members[hd.h.Name] = true
		gd.g.Hosts = append(gd.g.Hosts, hd.h.Name)
		hd.direct = append(hd.direct, group)
	}
}

// addChild links parent → child, refusing edges that would make a cycle.
func (b *builder) addChild(parent, child string, d *doc, at *yaml.Node) {
	pos := Pos{}
	if d != nil {
		pos = d.pos(at)
	} else {
		pos = b.byName[child].g.Pos
	}
	subject := fmt.Sprintf("group %q", parent)
	if parent == child {
		b.fail(&Error{Pos: pos, Subject: subject, Msg: "group cannot be its own child"})
		return
	}
	if b.reaches(child, parent) {
		b.fail(&Error{Pos: pos, Subject: subject, Msg: fmt.Sprintf("child %q makes a cycle: %q is already below it", child, parent)})
		return
	}
	p, c := b.byName[parent].g, b.byName[child].g
	if !slices.Contains(p.Children, child) {
		p.Children = append(p.Children, child)
		c.parents = append(c.parents, parent)
	}
}

// reaches reports whether to is from or one of its descendants.
func (b *builder) reaches(from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if g == to {
			return true
		}
		if seen[g] {
			continue
		}
		seen[g] = true
		stack = append(stack, b.byName[g].g.Children...)
	}
	return false
}

func (b *builder) setGroupVar(d *doc, gd *groupDef, p pair) {
	subject := fmt.Sprintf("group %q", gd.g.Name)
	if p.key == "ansible_group_priority" {
		// Ansible keeps the priority on the group, not among its vars.
		v, err := d.value(p.v, p.alias, 0)
		prio, ok := v.(int)
		if s, isStr := v.(string); isStr {
			_, perr := fmt.Sscanf(s, "%d", &prio)
			ok = perr == nil && fmt.Sprint(prio) == s
		}
		if err != nil || !ok {
			b.fail(d.errorf(p.v, subject, "ansible_group_priority must be an integer"))
			return
		}
		gd.g.Priority = prio
		return
	}
	b.setVar(d, subject, gd.g.Vars, gd.varPos, gd.settings, p)
}

func (b *builder) setHostVar(d *doc, hd *hostDef, p pair) {
	b.setVar(d, fmt.Sprintf("host %q", hd.h.Name), hd.vars, hd.varPos, hd.settings, p)
}

func (b *builder) setVar(d *doc, subject string, vars map[string]any, varPos map[string]Pos, settings map[string]setting, p pair) {
	v, err := d.value(p.v, p.alias, 0)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Subject == "" {
			e.Subject = subject
		}
		b.fail(err)
		return
	}
	b.storeVar(d, subject, vars, varPos, settings, p, v)
}

// storeVar records one variable, validating haltfleet_ settings from p's node.
func (b *builder) storeVar(d *doc, subject string, vars map[string]any, varPos map[string]Pos, settings map[string]setting, p pair, v any) {
	if isSettingName(p.key) {
		s, err := parseSetting(d, p)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Subject = subject
			}
			b.fail(err)
			return
		}
		settings[p.key] = s
	}
	vars[p.key] = v
	varPos[p.key] = d.pos(p.k)
}

// yamlErr splits a yaml.v3 syntax error ("yaml: line N: msg") into line and message.
func yamlErr(err error) (int, string) {
	var line int
	msg := err.Error()
	if _, e := fmt.Sscanf(msg, "yaml: line %d:", &line); e == nil {
		if _, rest, ok := strings.Cut(msg, fmt.Sprintf("line %d: ", line)); ok {
			return line, "YAML syntax: " + rest
		}
	}
	return 0, msg
}
