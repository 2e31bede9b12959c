package bench

import (
	"context"
	"errors"
)

func ansible(name, playbook string) func(ctx context.Context, e *runEnv) (Result, error) {
	return func(ctx context.Context, e *runEnv) (Result, error) { return Result{}, errors.New("todo") }
}

func resetHosts(ctx context.Context, e *runEnv) error { return nil }
