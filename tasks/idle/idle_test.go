package idle

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/tasks/idle/internal/stamp"
)

func readStamp(t *testing.T) stamp.Stamp {
	t.Helper()
	b, err := os.ReadFile(stamp.File)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stamp.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The embedded bytes are what go generate built and recorded.
func TestEmbeddedBinariesMatchStamp(t *testing.T) {
	s := readStamp(t)
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range stamp.Arches {
		b, err := Binary(arch)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := SHA256(arch), s.Binaries[stamp.BinaryName(arch)]; got != want {
			t.Errorf("%s: embedded sha256 %s, stamp says %s", arch, got, want)
		}
		f, err := elf.NewFile(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: not ELF: %v", arch, err)
		}
		if f.Machine != machines[arch] || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
			t.Errorf("%s: machine %v class %v type %v", arch, f.Machine, f.Class, f.Type)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: not static: has %v", arch, p.Type)
			}
		}
		t.Logf("%s: %d bytes, sha256 %s", arch, len(b), SHA256(arch))
	}
}

func TestUnknownArch(t *testing.T) {
	if _, err := Binary("mips64"); !errors.Is(err, ErrUnsupportedArch) {
		t.Errorf("Binary(mips64) error %v, want ErrUnsupportedArch", err)
	}
	if SHA256("mips64") != "" {
		t.Error("SHA256(mips64) not empty")
	}
}

// Toolchain-independent: the sources changed without go generate.
func TestStampMatchesSources(t *testing.T) {
	root, err := stamp.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	digest, err := stamp.SourceDigest(root)
	if err != nil {
		t.Fatal(err)
	}
	if s := readStamp(t); s.Sources != digest {
		t.Errorf("%s changed since the binaries were built: run go generate ./tasks/idle", stamp.Source)
	}
}

// With the same Go release, a rebuild must give the committed bytes exactly.
func TestRebuildIsByteIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("builds twice; skipped in -short")
	}
	goTool := testenv.NeedCommand(t, "go")
	ctx := context.Background()
	s := readStamp(t)
	version, err := stamp.GoVersion(ctx, goTool)
	if err != nil {
		t.Fatal(err)
	}
	if version != s.Go {
		t.Skipf("go tool is %s, binaries were built with %s: only the source digest is compared", version, s.Go)
	}
	root, err := stamp.ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range stamp.Arches {
		out := filepath.Join(t.TempDir(), stamp.BinaryName(arch))
		if err := stamp.Build(ctx, goTool, root, arch, out); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Binary(arch)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: rebuild differs from the committed binary (%d vs %d bytes): run go generate ./tasks/idle", arch, len(got), len(want))
		}
	}
}

// The committed binary for this machine passes its own selftest.
func TestEmbeddedSelftest(t *testing.T) {
	testenv.NeedRoot(t)
	b, err := Binary(runtime.GOARCH)
	if err != nil {
		t.Skipf("no idle init for %s", runtime.GOARCH)
	}
	path := filepath.Join(t.TempDir(), "haltfleet-idle")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "--selftest").CombinedOutput()
	if err != nil {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "selftest ok: haltfleet-idle: parked pid=1 others=0 ") {
		t.Errorf("selftest output %q", out)
	}
	t.Logf("%s", out)
}
