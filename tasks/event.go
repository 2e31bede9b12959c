package tasks

import "time"

// Event statuses: what the CLI renders per host and stage.
const (
	StatusStart   = "start"
	StatusOK      = "ok"
	StatusChanged = "changed"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
)

// Event is one step of `up` on one host, emitted as it happens so the CLI can render
// progress without the tasks package printing anything.
type Event struct {
	Host    string    `json:"host"`
	Stage   string    `json:"stage"` // facts, refuse, plan, apply, verify, halt, gone, probe
	Status  string    `json:"status"`
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`
}
