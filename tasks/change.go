// Package tasks knows init systems, rulesets and what makes a host a halted firewall.
// It talks to hosts only through runner.Runner and never starts goroutines of its own
// for fleet work: the CLI decides concurrency.
package tasks

import "io/fs"

// ChangeKind says how a Change is applied.
type ChangeKind string

const (
	KindFile    ChangeKind = "file"    // write Path with New (Old is the current content, "" if absent)
	KindRemove  ChangeKind = "remove"  // delete Path
	KindRuleset ChangeKind = "ruleset" // apply the nftables ruleset atomically behind the dead-man timer
	KindSysctl  ChangeKind = "sysctl"  // set Key to New at runtime (persistence is a KindFile)
	KindCommand ChangeKind = "command" // run Command (already quoted); Summary says why
	KindHalt    ChangeKind = "halt"    // the remote halt
)

// Change is one step `up` would take on a host. A plan is []Change: `plan` prints it,
// `up` applies it, `audit` reports it as drift. Old/New hold enough to print a diff.
type Change struct {
	Host    string      `json:"host"`
	Stage   string      `json:"stage"` // ruleset, sysctl, persist, arm, halt
	Kind    ChangeKind  `json:"kind"`
	Summary string      `json:"summary"`
	Path    string      `json:"path,omitempty"`
	Key     string      `json:"key,omitempty"`
	Old     string      `json:"old,omitempty"`
	New     string      `json:"new,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
	Command string      `json:"command,omitempty"`
	// Diff is a unified diff (files) or canonical ruleset diff, ready to print.
	Diff string `json:"diff,omitempty"`
}
