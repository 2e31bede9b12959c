package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/haltfleet/haltfleet/inventory"
)

func runInventory(ctx context.Context, args []string) int {
	fs := newFlagSet("inventory")
	inv := fs.String("i", "", "inventory `file` (Ansible YAML)")
	fs.StringVar(inv, "inventory", "", "same as -i")
	list := fs.Bool("list", false, "print every group and host with its variables, as ansible-inventory --list")
	limit := fs.String("limit", "", "Ansible host `pattern` (names, groups, globs, ~regex, !exclude, &intersect, @file)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *inv == "" || !*list {
		fs.Usage()
		return exitUsage
	}
	in, err := inventory.Load(*inv)
	if err == nil {
		warnSkipped(in)
	}
	if err != nil {
		return fail(err)
	}
	var hosts []*inventory.Host
	if *limit != "" {
		hosts, err = in.Limit(*limit)
		if err != nil {
			return fail(err)
		}
	}
	out, err := in.ListJSON()
	if err != nil {
		return fail(err)
	}
	if *limit != "" {
		if out, err = limitList(out, hosts); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintln(Stdout, string(out))
	return exitOK
}

// limitList narrows ansible-inventory --list JSON to hosts, as `ansible-inventory --limit`
// does: other hosts leave every group and _meta.hostvars; groups stay.
func limitList(list []byte, hosts []*inventory.Host) ([]byte, error) {
	keep := map[string]bool{}
	for _, h := range hosts {
		keep[h.Name] = true
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(list, &doc); err != nil {
		return nil, err
	}
	for name, raw := range doc {
		var g map[string]any
		if err := json.Unmarshal(raw, &g); err != nil {
			return nil, err
		}
		if name == "_meta" {
			if hv, ok := g["hostvars"].(map[string]any); ok {
				for h := range hv {
					if !keep[h] {
						delete(hv, h)
					}
				}
			}
		} else if hs, ok := g["hosts"].([]any); ok {
			var kept []any
			for _, h := range hs {
				if s, _ := h.(string); keep[s] {
					kept = append(kept, h)
				}
			}
			if len(kept) == 0 {
				delete(g, "hosts")
			} else {
				g["hosts"] = kept
			}
		}
		b, err := json.Marshal(g)
		if err != nil {
			return nil, err
		}
		doc[name] = b
	}
	return json.MarshalIndent(doc, "", "    ")
}
