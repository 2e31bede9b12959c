package lab

import (
	"github.com/haltfleet/haltfleet/internal/labkit"
	"github.com/haltfleet/haltfleet/runner"
)

// Shared plumbing (internal/labkit) under the short names this package uses.
var (
	run      = labkit.Run
	tail     = labkit.Tail
	lockFile = labkit.LockFile
	shq      = runner.Quote
)
