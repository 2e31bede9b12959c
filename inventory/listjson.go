package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
)

// internalVars are the names ansible-inventory --list leaves out of hostvars.
var internalVars = []string{
	"ansible_diff_mode", "ansible_config_file", "ansible_facts", "ansible_forks",
	"ansible_inventory_sources", "ansible_limit", "ansible_playbook_python",
	"ansible_run_tags", "ansible_skip_tags", "ansible_verbosity", "ansible_version",
	"inventory_dir", "inventory_file", "inventory_hostname", "inventory_hostname_short",
	"groups", "group_names", "omit", "playbook_dir",
}

// ListJSON renders the inventory in the shape of `ansible-inventory --list`,
// so the two can be diffed: groups with hosts and children, "all" with
// children only, empty groups left out, merged vars under _meta.hostvars.
func (inv *Inventory) ListJSON() ([]byte, error) {
	out := map[string]any{}
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		g := inv.Groups[name]
		entry := map[string]any{}
		if name != "all" && len(g.Hosts) > 0 {
			entry["hosts"] = g.Hosts
		}
		if len(g.Children) > 0 {
			entry["children"] = g.Children
		}
		for _, c := range g.Children {
			if !seen[c] {
				seen[c] = true
				walk(c)
			}
		}
		if len(entry) > 0 {
			out[name] = entry
		}
	}
	walk("all")
	hostvars := map[string]any{}
	for _, h := range inv.Hosts {
		vars := maps.Clone(h.Vars)
		for _, k := range internalVars {
			delete(vars, k)
		}
		if len(vars) > 0 {
			hostvars[h.Name] = pythonFloats(vars)
		}
	}
	out["_meta"] = map[string]any{"hostvars": hostvars}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("inventory: list: %w", err)
	}
	return buf.Bytes(), nil
}

// pythonFloats copies v with floats spelled as Python's json module spells
// them (3.0, 1e+16), so our output diffs cleanly against Ansible's.
func pythonFloats(v any) any {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return v // no JSON form: the encoder reports it
		}
		if a := math.Abs(v); a != 0 && (a >= 1e16 || a < 1e-4) {
			return json.Number(strconv.FormatFloat(v, 'e', -1, 64))
		}
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return json.Number(s)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = pythonFloats(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = pythonFloats(e)
		}
		return out
	}
	return v
}
