// Package stamp builds the idle init reproducibly and records what it was built from, so a
// test can tell whether the committed binaries still match their source.
package stamp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Source is the idle init's package, relative to the module root.
const Source = "cmd/haltfleet-idle"

// File is the stamp's name in tasks/idle.
const File = "idle.stamp"

// Arches are the targets haltfleet carries a binary for.
var Arches = []string{"amd64", "arm64"}

// ldflags strip symbols, DWARF and the build ID: smaller, and the same bytes on every machine.
const ldflags = "-s -w -buildid="

// BinaryName is the committed file for goarch.
func BinaryName(goarch string) string { return "idle-linux-" + goarch }

// Build compiles the idle init for goarch into out, pinning everything that changes bytes:
// no cgo, no VCS stamp, trimmed paths, baseline CPU levels, no experiments.
func Build(ctx context.Context, goTool, root, goarch, out string) error {
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-buildvcs=false",
		"-ldflags="+ldflags, "-o", out, "./"+Source)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %w: %s", Source, goarch, err, bytes.TrimSpace(b))
	}
	return nil
}

// GoVersion asks the go tool which release it is (the bytes depend on it).
func GoVersion(ctx context.Context, goTool string) (string, error) {
	b, err := exec.CommandContext(ctx, goTool, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// SourceDigest hashes what the binary is built from, independent of the toolchain: the
// package's non-test Go files, go.mod's go/toolchain/godebug lines (they set GODEBUG
// defaults in the binary) and the build flags.
func SourceDigest(root string) (string, error) {
	dir := filepath.Join(root, Source)
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	h := sha256.New()
	fmt.Fprintf(h, "flags %s\n", ldflags)
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %s %d\n", filepath.Base(name), len(b))
		h.Write(b)
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("no Go files in %s", dir)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(mod), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "go ") || strings.HasPrefix(line, "toolchain ") || strings.HasPrefix(line, "godebug") {
			fmt.Fprintf(h, "mod %s\n", line)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Stamp is the content of idle.stamp.
type Stamp struct {
	Go       string            // go tool release that built the binaries
	Sources  string            // SourceDigest at build time
	Binaries map[string]string // file name -> SHA-256
}

// Format renders the stamp, one "key value" per line.
func (s Stamp) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# Written by go generate (tasks/idle/gen); checked by tasks/idle tests.\n")
	fmt.Fprintf(&b, "go %s\nsources %s\n", s.Go, s.Sources)
	names := make([]string, 0, len(s.Binaries))
	for n := range s.Binaries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, s.Binaries[n])
	}
	return b.Bytes()
}

// Parse reads a stamp written by Format.
func Parse(b []byte) (Stamp, error) {
	s := Stamp{Binaries: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			return Stamp{}, fmt.Errorf("stamp: malformed line %q", line)
		}
		switch k {
		case "go":
			s.Go = v
		case "sources":
			s.Sources = v
		default:
			s.Binaries[k] = v
		}
	}
	if s.Go == "" || s.Sources == "" || len(s.Binaries) == 0 {
		return Stamp{}, fmt.Errorf("stamp: incomplete")
	}
	return s, nil
}

// ModuleRoot walks up from dir to the directory holding go.mod.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
