package inventory

import (
	"errors"
	"maps"
	"slices"
	"strings"
)

// finish applies Ansible's reconcile_inventory rules, then merges variables.
func (b *builder) finish() (*Inventory, error) {
	if b.failed() {
		return nil, errors.Join(b.errs...)
	}
	// Every group without a parent hangs under "all".
	for _, gd := range b.groups {
		if gd.g.Name != "all" && len(gd.g.parents) == 0 {
			b.addChild("all", gd.g.Name, nil, nil)
		}
	}
	if b.failed() {
		return nil, errors.Join(b.errs...)
	}
	b.depths()
	b.loadVarsFiles()
	ungrouped := b.byName["ungrouped"].g
	leave := map[string]bool{}
	for _, h := range b.inv.Hosts {
		hd := b.hosts[h.Name]
		in := b.ancestors(hd.direct)
		others := len(in) - boolInt(in["all"]) - boolInt(in["ungrouped"])
		switch {
		case in["ungrouped"] && others > 0:
			// Listed under ungrouped and elsewhere: Ansible drops it from ungrouped.
			leave[h.Name] = true
			delete(in, "ungrouped")
		case others == 0 && !in["ungrouped"]:
			ungrouped.Hosts = append(ungrouped.Hosts, h.Name)
			in["ungrouped"], in["all"] = true, true
		}
		h.Groups = b.precedence(slices.Collect(maps.Keys(in)))
		b.merge(hd)
	}
	ungrouped.Hosts = slices.DeleteFunc(ungrouped.Hosts, func(n string) bool { return leave[n] })
	b.checkProbes()
	if b.failed() {
		return nil, errors.Join(b.errs...)
	}
	return b.inv, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// depths sets each group's depth to its longest path from "all", which is how
// Ansible's add_child_group leaves it.
func (b *builder) depths() {
	memo := map[string]int{}
	var depth func(string) int
	depth = func(name string) int {
		if d, ok := memo[name]; ok {
			return d
		}
		d := 0
		for _, p := range b.byName[name].g.parents {
			d = max(d, depth(p)+1)
		}
		memo[name] = d
		return d
	}
	for _, gd := range b.groups {
		gd.g.Depth = depth(gd.g.Name)
	}
}

// ancestors returns the groups and all their ancestors.
func (b *builder) ancestors(groups []string) map[string]bool {
	in := map[string]bool{}
	stack := slices.Clone(groups)
	for len(stack) > 0 {
		g := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !in[g] {
			in[g] = true
			stack = append(stack, b.byName[g].g.parents...)
		}
	}
	return in
}

// precedence sorts groups as Ansible's sort_groups does: by depth, then
// ansible_group_priority, then name, so later entries override earlier ones.
func (b *builder) precedence(groups []string) []string {
	slices.SortFunc(groups, func(x, y string) int {
		gx, gy := b.byName[x].g, b.byName[y].g
		if gx.Depth != gy.Depth {
			return gx.Depth - gy.Depth
		}
		if gx.Priority != gy.Priority {
			return gx.Priority - gy.Priority
		}
		return strings.Compare(x, y)
	})
	return groups
}

// merge computes a host's vars in ansible-core's order (VariableManager.get_vars
// with the default VARIABLE_PRECEDENCE): inventory vars of "all", then of its
// groups in precedence order; group_vars/all of each inventory source, then
// each source's group_vars for the host's other groups in precedence order;
// the host's inventory vars; its host_vars per source.
// So group_vars/all.yml beats a group's vars written in the inventory.
func (b *builder) merge(hd *hostDef) {
	h := hd.h
	h.Vars, h.VarPos = map[string]any{}, map[string]Pos{}
	settings := map[string]setting{}
	apply := func(vars map[string]any, varPos map[string]Pos, s map[string]setting) {
		maps.Copy(h.Vars, vars)
		maps.Copy(h.VarPos, varPos)
		maps.Copy(settings, s)
	}
	applyLayer := func(l *layer) {
		if l != nil {
			apply(l.vars, l.varPos, l.settings)
		}
	}
	for _, g := range h.Groups {
		gd := b.byName[g]
		apply(gd.g.Vars, gd.varPos, gd.settings)
	}
	all := b.byName["all"]
	for _, l := range all.files {
		applyLayer(l)
	}
	for s := range b.varsDirs {
		for _, g := range h.Groups {
			if g != "all" {
				applyLayer(b.byName[g].files[s])
			}
		}
	}
	apply(hd.vars, hd.varPos, hd.settings)
	for _, l := range hd.files {
		applyLayer(l)
	}
	h.Settings = buildSettings(settings)
}
