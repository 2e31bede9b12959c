package inventory

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits against hostile input: a real inventory is nowhere near any of them.
const (
	maxFileSize = 16 << 20 // bytes per inventory file
	maxDepth    = 64       // nested collections, counting through aliases
	maxExpanded = 1 << 20  // nodes visited through aliases (billion-laughs guard)
)

// doc converts the yaml.v3 node tree of one file, keeping file and line.
type doc struct {
	src      []byte
	lines    [][]byte // src split at newlines, made on first need
	file     string
	dir      string // absolute directory of file, for haltfleet_ruleset
	json     bool   // the file is JSON, which Ansible reads with Python's json module
	expanded int
	cache    map[*yaml.Node]converted
}

// pair is one key of a mapping after merge keys were applied.
type pair struct {
	key   string
	k, v  *yaml.Node
	alias bool // reached through an alias: counts against maxExpanded
}

func (d *doc) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line} }

func (d *doc) errorf(n *yaml.Node, subject, format string, args ...any) error {
	return &Error{Pos: d.pos(n), Subject: subject, Msg: fmt.Sprintf(format, args...)}
}

// deref follows aliases, charging every hop to the expansion budget.
func (d *doc) deref(n *yaml.Node, alias bool) (*yaml.Node, bool, error) {
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > maxDepth {
			return nil, alias, d.errorf(n, "", "unresolvable alias")
		}
		n, alias = n.Alias, true
	}
	if alias {
		d.expanded++
		if d.expanded > maxExpanded {
			return nil, alias, d.errorf(n, "", "aliases expand to more than %d nodes", maxExpanded)
		}
	}
	return n, alias, nil
}

// pairs lists a mapping's keys in file order, applying YAML merge keys (<<)
// as Ansible's loader does and rejecting duplicate keys, which PyYAML would
// silently resolve to the last one.
func (d *doc) pairs(n *yaml.Node, alias bool, depth int) ([]pair, error) {
	if depth > maxDepth {
		return nil, d.errorf(n, "", "nesting deeper than %d levels", maxDepth)
	}
	var own, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, kAlias, err := d.deref(n.Content[i], alias)
		if err != nil {
			return nil, err
		}
		v := n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, d.errorf(k, "", "mapping key must be a scalar")
		}
		if k.Tag == "!!merge" {
			m, err := d.mergeSource(v, alias, depth)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		key := k.Value
		if n.Style&yaml.FlowStyle != 0 && d.colonEndsKey(k, v) {
			return nil, d.errorf(k, "", "key %q: a colon right before , or } is a syntax error for Ansible's YAML loader; write %q", key, strings.TrimSuffix(key, ":")+": ")
		}
		if line, dup := seen[key]; dup {
			return nil, d.errorf(k, "", "duplicate key %q (first at line %d)", key, line)
		}
		seen[key] = k.Line
		own = append(own, pair{key: key, k: k, v: v, alias: kAlias})
	}
	// Explicit keys win over merged ones; among merged sources the first wins.
	for _, p := range merged {
		if _, dup := seen[p.key]; !dup {
			seen[p.key] = p.k.Line
			own = append(own, p)
		}
	}
	return own, nil
}

// colonEndsKey spots `{fw1:, fw2:}`: yaml.v3 reads a host "fw1:", libyaml
// (so Ansible) stops with "found unexpected ':'". The source text decides.
func (d *doc) colonEndsKey(k, v *yaml.Node) bool {
	if k.Style != 0 || !strings.HasSuffix(k.Value, ":") || !isNull(v) || v.Value != "" {
		return false
	}
	if d.lines == nil {
		d.lines = bytes.Split(d.src, []byte("\n"))
	}
	if k.Line < 1 || k.Line > len(d.lines) || k.Column < 1 {
		return false
	}
	line := []rune(string(d.lines[k.Line-1]))
	end := k.Column - 1 + len([]rune(k.Value))
	if end > len(line) || string(line[k.Column-1:end]) != k.Value {
		return false
	}
	return end < len(line) && strings.ContainsRune(",}]", line[end])
}

func (d *doc) mergeSource(v *yaml.Node, alias bool, depth int) ([]pair, error) {
	v, alias, err := d.deref(v, alias)
	if err != nil {
		return nil, err
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, alias, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range v.Content {
			m, mAlias, err := d.deref(m, alias)
			if err != nil {
				return nil, err
			}
			if m.Kind != yaml.MappingNode {
				return nil, d.errorf(m, "", "merge key (<<) needs mappings, got %s", kindName(m))
			}
			ps, err := d.pairs(m, mAlias, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
		return out, nil
	}
	return nil, d.errorf(v, "", "merge key (<<) needs a mapping, got %s", kindName(v))
}

// value converts a node to plain Go values: nil, bool, int, float64, string,
// []any and map[string]any, typed the way Ansible's YAML 1.1 loader types them.
func (d *doc) value(n *yaml.Node, alias bool, depth int) (any, error) {
	v, _, err := d.convert(n, alias, depth)
	return v, err
}

// converted is an anchored value already converted: later aliases to it share
// the result, so an alias bomb costs its nominal size in budget, not in time.
type converted struct {
	val           any
	nodes, height int
}

func (d *doc) convert(n *yaml.Node, alias bool, depth int) (any, int, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if c, ok := d.cache[n.Alias]; ok {
			d.expanded += c.nodes
			if d.expanded > maxExpanded {
				return nil, 0, d.errorf(n, "", "aliases expand to more than %d nodes", maxExpanded)
			}
			if depth+c.height > maxDepth {
				return nil, 0, d.errorf(n, "", "nesting deeper than %d levels", maxDepth)
			}
			return c.val, c.height, nil
		}
		before := d.expanded
		v, h, err := d.convert(n.Alias, true, depth)
		if err != nil {
			return nil, 0, err
		}
		if d.cache == nil {
			d.cache = map[*yaml.Node]converted{}
		}
		d.cache[n.Alias] = converted{val: v, nodes: d.expanded - before + 1, height: h}
		return v, h, nil
	}
	n, alias, err := d.deref(n, alias)
	if err != nil {
		return nil, 0, err
	}
	if depth > maxDepth {
		return nil, 0, d.errorf(n, "", "nesting deeper than %d levels", maxDepth)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := d.scalar(n)
		return v, 0, err
	case yaml.SequenceNode:
		out, height := make([]any, 0, len(n.Content)), 0
		for _, c := range n.Content {
			v, h, err := d.convert(c, alias, depth+1)
			if err != nil {
				return nil, 0, err
			}
			out, height = append(out, v), max(height, h+1)
		}
		return out, height, nil
	case yaml.MappingNode:
		ps, err := d.pairs(n, alias, depth)
		if err != nil {
			return nil, 0, err
		}
		if v, ok := d.jsonTagged(ps); ok {
			return v, 0, nil
		}
		out, height := make(map[string]any, len(ps)), 0
		for _, p := range ps {
			v, h, err := d.convert(p.v, p.alias, depth+1)
			if err != nil {
				return nil, 0, err
			}
			out[p.key], height = v, max(height, h+1)
		}
		return out, height, nil
	}
	return nil, 0, d.errorf(n, "", "unexpected YAML node")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("scalar %q", n.Value)
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return n.Tag == "!!null"
	}
	return n.Style&quoted == 0 && reNull.MatchString(n.Value)
}
