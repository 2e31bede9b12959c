// Command gen rebuilds the idle init binaries that tasks/idle embeds and writes idle.stamp.
// Run through go generate in tasks/idle.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/haltfleet/haltfleet/tasks/idle/internal/stamp"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	root, err := stamp.ModuleRoot(".")
	if err != nil {
		return err
	}
	out := filepath.Join(root, "tasks", "idle")
	version, err := stamp.GoVersion(ctx, goTool)
	if err != nil {
		return err
	}
	digest, err := stamp.SourceDigest(root)
	if err != nil {
		return err
	}
	s := stamp.Stamp{Go: version, Sources: digest, Binaries: map[string]string{}}
	for _, arch := range stamp.Arches {
		name := filepath.Join(out, stamp.BinaryName(arch))
		if err := stamp.Build(ctx, goTool, root, arch, name); err != nil {
			return err
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		s.Binaries[stamp.BinaryName(arch)] = hex.EncodeToString(sum[:])
		fmt.Printf("%s %d bytes sha256 %x\n", stamp.BinaryName(arch), len(b), sum)
	}
	return os.WriteFile(filepath.Join(out, stamp.File), s.Format(), 0o644)
}
