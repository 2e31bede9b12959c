// Package idle carries the idle init (cmd/haltfleet-idle) for every target architecture, so
// a plain "go build ./cmd/haltfleet" ships it. The binaries are committed build outputs;
// go generate rebuilds them and the tests fail when they fall behind their source.
package idle

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
)

//go:generate go run ./gen

var (
	//go:embed idle-linux-amd64
	amd64 []byte
	//go:embed idle-linux-arm64
	arm64 []byte
)

// ErrUnsupportedArch means haltfleet carries no idle init for the host's architecture.
var ErrUnsupportedArch = errors.New("no idle init for this architecture")

func binaries() map[string][]byte { return map[string][]byte{"amd64": amd64, "arm64": arm64} }

// Binary returns the static idle init for goarch ("amd64", "arm64"; Go's GOARCH names).
// The slice is shared: do not modify it.
func Binary(goarch string) ([]byte, error) {
	b, ok := binaries()[goarch]
	if !ok {
		return nil, fmt.Errorf("idle: %q: %w", goarch, ErrUnsupportedArch)
	}
	return b, nil
}

// SHA256 returns the hex SHA-256 of Binary(goarch), to check a copy on a host, or "" if
// there is none for goarch.
func SHA256(goarch string) string {
	b, ok := binaries()[goarch]
	if !ok {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
