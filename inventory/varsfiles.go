package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Limits on what one load may read, against hostile or runaway trees.
const (
	maxFiles      = 20000     // inventory and vars files read in one load
	maxTotalSize  = 256 << 20 // bytes read in one load
	maxDirEntries = 10000     // entries in one directory
	maxDirDepth   = 16        // nested directories under an inventory or vars directory
)

// layer is the vars one group_vars/ or host_vars/ entry gives one group or host.
type layer struct {
	vars     map[string]any
	varPos   map[string]Pos
	settings map[string]setting
}

// varsExts are the names Ansible's find_vars_files tries, in order: the
// first that exists is used, a directory standing for all its files.
var varsExts = []string{"", ".yml", ".yaml", ".json"}

// loadVarsFiles reads group_vars/ and host_vars/ next to each inventory
// source for every group and host, as Ansible's host_group_vars plugin does.
func (b *builder) loadVarsFiles() {
	for _, base := range b.varsDirs {
		for _, gd := range b.groups {
			gd.files = append(gd.files, b.varsLayer(base, "group_vars", gd.g.Name, fmt.Sprintf("group %q", gd.g.Name)))
		}
		for _, h := range b.inv.Hosts {
			hd := b.hosts[h.Name]
			hd.files = append(hd.files, b.varsLayer(base, "host_vars", h.Name, fmt.Sprintf("host %q", h.Name)))
		}
	}
}

// varsLayer returns the vars of base/subdir/name[.ext], or nil when there are none.
func (b *builder) varsLayer(base, subdir, name, subject string) *layer {
	// Ansible skips names starting with "/"; names climbing out (../x) are
	// skipped too rather than read from outside the vars directory.
	if strings.HasPrefix(name, "/") || !filepath.IsLocal(name) {
		return nil
	}
	key := base + "\x00" + subdir + "\x00" + name
	if l, ok := b.layers[key]; ok {
		return l
	}
	b.layers[key] = nil // read once, even when it fails
	dir, err := filepath.EvalSymlinks(filepath.Join(base, subdir))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.fail(fmt.Errorf("inventory: %s: %w", filepath.Join(base, subdir), err))
		}
		return nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil // Ansible warns and skips a group_vars that is not a directory
	}
	files, err := varsFilesFor(dir, name)
	if err != nil {
		b.fail(err)
		return nil
	}
	var l *layer
	for _, f := range files {
		data, err := b.read(f)
		if err != nil {
			b.fail(err)
			return nil
		}
		if l == nil {
			l = &layer{vars: map[string]any{}, varPos: map[string]Pos{}, settings: map[string]setting{}}
		}
		b.varsFile(f, base, subject, data, l)
	}
	b.layers[key] = l
	return l
}

// varsFilesFor is Ansible's find_vars_files: name, name.yml, name.yaml or
// name.json, whichever exists first; a directory gives its files, sorted,
// recursively, without hidden files, backups~ or other extensions.
func varsFilesFor(dir, name string) ([]string, error) {
	for _, ext := range varsExts {
		full := filepath.Join(dir, name+ext)
		st, err := os.Lstat(full)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if st, err = os.Stat(full); err != nil {
			return nil, fmt.Errorf("inventory: %s: %w", full, err) // dangling or looping symlink
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("inventory: %s: not a regular file", full)
			}
			return []string{full}, nil
		}
		var files []string
		err = walkDir(full, 0, nil, func(path, entry string, st os.FileInfo) (bool, error) {
			if strings.HasPrefix(entry, ".") || strings.HasSuffix(entry, "~") {
				return false, nil
			}
			ext := filepath.Ext(entry)
			if st.IsDir() {
				return ext == "", nil
			}
			if st.Mode().IsRegular() && slices.Contains(varsExts, ext) {
				files = append(files, path)
			}
			return false, nil
		})
		return files, err
	}
	return nil, nil
}

// walkDir calls visit for each entry of dir in name order, following
// symlinks, and descends where visit says so; it refuses symlink loops,
// directories deeper than maxDirDepth and directories with too many entries.
func walkDir(dir string, depth int, above []string, visit func(path, entry string, st os.FileInfo) (bool, error)) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("inventory: %s: %w", dir, err)
	}
	if slices.Contains(above, real) {
		return fmt.Errorf("inventory: %s: symlink loop (it leads back to %s)", dir, real)
	}
	if depth > maxDirDepth {
		return fmt.Errorf("inventory: %s: directories nested deeper than %d levels", dir, maxDirDepth)
	}
	names, err := readDirNames(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("inventory: %s: %w", path, err)
		}
		descend, err := visit(path, name, st)
		if err != nil {
			return err
		}
		if descend {
			if err := walkDir(path, depth+1, append(above, real), visit); err != nil {
				return err
			}
		}
	}
	return nil
}

// readDirNames lists a directory sorted, refusing more than maxDirEntries
// before reading them all.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(maxDirEntries + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("inventory: %s: %w", dir, err)
	}
	if len(names) > maxDirEntries {
		return nil, fmt.Errorf("inventory: %s: more than %d entries", dir, maxDirEntries)
	}
	slices.Sort(names)
	return names, nil
}

// read reads one file within the load's file and byte budgets.
func (b *builder) read(path string) ([]byte, error) {
	b.files++
	if b.files > maxFiles {
		return nil, fmt.Errorf("inventory: %s: more than %d files in one inventory", path, maxFiles)
	}
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	b.bytes += len(data)
	if b.bytes > maxTotalSize {
		return nil, fmt.Errorf("inventory: %s: more than %d bytes of inventory files in all", path, maxTotalSize)
	}
	return data, nil
}

// varsFile adds one group_vars or host_vars file to l. Relative
// haltfleet_ruleset paths in it are relative to base, the inventory's
// directory, like those in the inventory itself.
func (b *builder) varsFile(path, base, subject string, data []byte, l *layer) {
	if len(data) > maxFileSize {
		b.fail(&Error{Pos: Pos{path, 0}, Subject: subject, Msg: fmt.Sprintf("file larger than %d bytes", maxFileSize)})
		return
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("$ANSIBLE_VAULT;")) {
		b.fail(&Error{Pos: Pos{path, 1}, Subject: subject, Msg: "vault-encrypted file: haltfleet cannot decrypt it (encrypt single values with !vault instead)"})
		return
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		b.fail(fmt.Errorf("inventory: %s: %w", path, err))
		return
	}
	d := &doc{src: data, file: path, dir: abs, json: json.Valid(data)}
	top, alias, _, err := decodeMapping(d, data, "vars file must be a mapping of variables")
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Subject = subject
		}
		b.fail(err)
		return
	}
	if top == nil {
		return // Ansible ignores empty vars files
	}
	b.eachPair(d, top, alias, 1, func(p pair) { b.setVar(d, subject, l.vars, l.varPos, l.settings, p) })
}
