// Package inventory loads Ansible's YAML and INI inventory formats and their
// group_vars/ and host_vars/, with Ansible's group tree, host ranges and
// variable precedence, plus haltfleet's own haltfleet_* settings, keeping the
// file and line of everything for error messages.
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
	Vars     map[string]any // merged as Ansible does: see builder.merge
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
	Skipped   []string // files in inventory directories that were neither YAML nor INI, as Ansible skips them
	byName    map[string]*Host
}

// Host returns the named host or nil.
func (inv *Inventory) Host(name string) *Host { return inv.byName[name] }

// Load reads one inventory file or a directory of them.
func Load(path string) (*Inventory, error) { return LoadAll(path) }

// LoadAll reads several inventory files or directories into one inventory,
// as repeated ansible -i options do. Each file is YAML (or JSON) or INI,
// detected as Ansible does. A directory is read in name order, recursively,
// skipping what Ansible skips (hidden files, group_vars, host_vars, *.ini,
// *.cfg, *.md, backups...). Next to each file, or inside each directory,
// group_vars/ and host_vars/ are read for the inventory's groups and hosts.
func LoadAll(paths ...string) (*Inventory, error) {
	if len(paths) == 0 {
		return nil, errors.New("inventory: no inventory path given")
	}
	b := newBuilder(paths[0])
	for _, p := range paths {
		files, isDir, err := inventoryFiles(p)
		if err != nil {
			return nil, err
		}
		base := p
		if !isDir {
			base = filepath.Dir(p)
		}
		b.varsDirs = append(b.varsDirs, base)
		for _, f := range files {
			data, err := b.read(f)
			if err != nil {
				return nil, err
			}
			if !b.source(f, data, isDir) {
				b.inv.Skipped = append(b.inv.Skipped, f)
			}
		}
	}
	return b.finish()
}

// Parse reads one inventory, YAML or INI, from data; path names it in errors
// and anchors relative haltfleet_ruleset paths. No group_vars/ or host_vars/
// are read.
func Parse(path string, data []byte) (*Inventory, error) {
	b := newBuilder(path)
	b.file(path, data)
	return b.finish()
}

// ignoredEntry is Ansible's IGNORED pattern for inventory directories:
// hidden names, vars directories and INVENTORY_IGNORE_EXTS suffixes.
func ignoredEntry(name string) bool {
	if strings.HasPrefix(name, ".") || slices.Contains([]string{"host_vars", "group_vars", "vars_plugins"}, name) {
		return true
	}
	for _, ext := range []string{".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini", ".cfg", ".retry"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func inventoryFiles(path string) ([]string, bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("inventory: %w", err)
	}
	if !st.IsDir() {
		if !st.Mode().IsRegular() {
			return nil, false, fmt.Errorf("inventory: %s: not a regular file", path)
		}
		return []string{path}, false, nil
	}
	var files []string
	err = walkDir(path, 0, nil, func(p, name string, st os.FileInfo) (bool, error) {
		if ignoredEntry(name) {
			return false, nil
		}
		if st.Mode().IsRegular() {
			files = append(files, p)
		}
		return st.IsDir(), nil
	})
	if err != nil {
		return nil, true, err
	}
	if len(files) == 0 {
		return nil, true, fmt.Errorf("inventory: %s: no inventory files", path)
	}
	return files, true, nil
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
