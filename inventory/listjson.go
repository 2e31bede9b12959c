package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
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
			hostvars[h.Name] = vars
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
