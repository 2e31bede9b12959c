package tasks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// CanonicalRuleset turns `nft -j list ruleset` output into a canonical form: one line per
// object, sorted so that two rulesets with the same meaning give the same lines. Dropped:
// metainfo, handles, counter/quota state, element expiry, the elements of sets the packet
// path fills (dynamic or timeout flags), and the listing order of tables, chains, sets and
// of set elements. Kept: everything else, including the order of rules inside a chain.
func CanonicalRuleset(nftJSON []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(nftJSON))
	dec.UseNumber()
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse nft json: %w", err)
	}
	if doc.Nftables == nil {
		return nil, fmt.Errorf("parse nft json: no \"nftables\" array")
	}
	type keyed struct {
		sortKey string
		line    string
	}
	var objs []keyed
	ruleIndex := map[string]int{} // chain -> next rule position
	for _, obj := range doc.Nftables {
		if len(obj) != 1 {
			return nil, fmt.Errorf("parse nft json: object with %d keys", len(obj))
		}
		for kind, body := range obj {
			if kind == "metainfo" {
				continue
			}
			m, _ := body.(map[string]any)
			normalizeObject(kind, m)
			line, err := json.Marshal(map[string]any{kind: body})
			if err != nil {
				return nil, err
			}
			key := objectKey(kind, m)
			if kind == "rule" {
				// Rules keep their order within the chain, nothing else.
				chain := key
				key = fmt.Sprintf("%s\x00%08d", chain, ruleIndex[chain])
				ruleIndex[chain]++
			}
			objs = append(objs, keyed{key, string(line)})
		}
	}
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].sortKey < objs[j].sortKey })
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.line
	}
	return out, nil
}

// kindOrder puts tables first and rules last so the canonical form reads top-down.
var kindOrder = map[string]string{"table": "0", "chain": "2", "rule": "3"}

func objectKey(kind string, m map[string]any) string {
	s := func(k string) string { v, _ := m[k].(string); return v }
	order, ok := kindOrder[kind]
	if !ok {
		order = "1" // sets, maps, counters, quotas, flowtables, ct objects, ...
	}
	switch kind {
	case "table":
		return strings.Join([]string{s("family"), s("name"), order}, "\x00")
	case "rule":
		return strings.Join([]string{s("family"), s("table"), order, s("chain")}, "\x00")
	}
	return strings.Join([]string{s("family"), s("table"), order, kind, s("name")}, "\x00")
}

// stateKeys are, per stateful object or statement, the values the kernel changes as
// packets flow; they are not part of the meaning. (A quota's "bytes" is its limit.)
var stateKeys = map[string][]string{
	"counter": {"packets", "bytes"},
	"quota":   {"used", "used_unit"},
	"last":    {"used"},
}

func normalizeObject(kind string, m map[string]any) {
	if m == nil {
		return
	}
	for _, sk := range stateKeys[kind] {
		delete(m, sk)
	}
	if kind == "set" || kind == "map" {
		if hasFlag(m, "dynamic") || hasFlag(m, "timeout") {
			delete(m, "elem") // filled and expired by the packet path
		}
	}
	normalizeValue(m)
}

func hasFlag(m map[string]any, flag string) bool {
	switch f := m["flags"].(type) {
	case string:
		return f == flag
	case []any:
		for _, x := range f {
			if x == flag {
				return true
			}
		}
	}
	return false
}

// normalizeValue walks a JSON value in place.
func normalizeValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "handle")
		delete(t, "expires")
		for k, x := range t {
			switch k {
			case "counter", "quota", "last":
				// Stateful statements: drop the state, keep the statement (and a named
				// reference, which is a string).
				if sm, ok := x.(map[string]any); ok {
					for _, sk := range stateKeys[k] {
						delete(sm, sk)
					}
					if len(sm) == 0 {
						t[k] = nil
						continue
					}
				}
			case "elem", "set":
				// Set elements and anonymous sets are unordered.
				if arr, ok := x.([]any); ok {
					for i := range arr {
						arr[i] = normalizeValue(arr[i])
					}
					sortJSON(arr)
					continue
				}
			}
			t[k] = normalizeValue(x)
		}
		return t
	case []any:
		for i := range t {
			t[i] = normalizeValue(t[i])
		}
		return t
	}
	return v
}

func sortJSON(arr []any) {
	keys := make([]string, len(arr))
	idx := make([]int, len(arr))
	for i, x := range arr {
		b, _ := json.Marshal(x)
		keys[i] = string(b)
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return keys[idx[i]] < keys[idx[j]] })
	sorted := make([]any, len(arr))
	for i, j := range idx {
		sorted[i] = arr[j]
	}
	copy(arr, sorted)
}
