// Package inventory loads Ansible's YAML inventory format, with Ansible's group
// tree, host ranges and variable precedence, plus haltfleet's own haltfleet_*
// settings, keeping the file and line of everything for error messages.
package inventory

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Pos is where something was written.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Error is one problem in an inventory, located and attributed to a host or group.
type Error struct {
	Pos     Pos
	Subject string // `group "web"`, `host "fw01"` or empty
	Msg     string
}

func (e *Error) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Pos, e.Subject, e.Msg)
}

// Host is one inventory host with its variables merged by Ansible's precedence.
// Vars values are shared between hosts: treat them as read-only.
type Host struct {
	Name     string
	Vars     map[string]any // merged: all < parent group < child group < host
	VarPos   map[string]Pos // where each winning value in Vars was written
	Groups   []string       // every group it is in, ancestors and "all" included, in precedence order
	Pos      Pos            // first place the host appears
	Settings Settings
}

// Group is one inventory group as written (its own vars only, direct members only).
type Group struct {
	Name     string
	Hosts    []string // direct members, in the order they were added
	Children []string // direct child groups, in the order they were added
	Vars     map[string]any
	Pos      Pos // first definition; zero for implicit "all" and "ungrouped"
	Priority int // ansible_group_priority, default 1
	Depth    int // longest path from "all"
	parents  []string
}

// Inventory is a loaded inventory. Hosts are in Ansible's order: the order in
// which they first appear in the file(s).
type Inventory struct {
	Path, Dir string
	Hosts     []*Host
	Groups    map[string]*Group
	byName    map[string]*Host
}

// Host returns the named host or nil.
func (inv *Inventory) Host(name string) *Host { return inv.byName[name] }

// Load reads one inventory file or a directory of them.
func Load(path string) (*Inventory, error) { return LoadAll(path) }

// LoadAll reads several inventory files or directories into one inventory,
// as repeated ansible -i options do. In a directory, *.yml, *.yaml and *.json
// files are read in name order; other files are skipped.
func LoadAll(paths ...string) (*Inventory, error) {
	if len(paths) == 0 {
		return nil, errors.New("inventory: no inventory path given")
	}
	b := newBuilder(paths[0])
	for _, p := range paths {
		files, err := inventoryFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := readLimited(f)
			if err != nil {
				return nil, err
			}
			b.file(f, data)
		}
	}
	return b.finish()
}

// Parse reads one inventory from data; path names it in errors and anchors
// relative haltfleet_ruleset paths.
func Parse(path string, data []byte) (*Inventory, error) {
	b := newBuilder(path)
	b.file(path, data)
	return b.finish()
}

func inventoryFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	var files []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.Type().IsRegular() && slices.Contains([]string{".yml", ".yaml", ".json"}, ext) && !strings.HasPrefix(e.Name(), ".") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("inventory: %s: no *.yml, *.yaml or *.json files", path)
	}
	return files, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("inventory: %s: %w", path, err)
	}
	return data, nil
}
