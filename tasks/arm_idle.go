package tasks

import "github.com/haltfleet/haltfleet/tasks/idle"

// The idle init is embedded per arch by package idle; these are the only two uses.
func idleSHA256(arch string) string { return idle.SHA256(arch) }

func idleBinary(arch string) ([]byte, error) { return idle.Binary(arch) }
