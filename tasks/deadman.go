package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/haltfleet/haltfleet/runner"
)

var (
	// ErrRolledBack: the new ruleset was not confirmed over a new connection (or the
	// timer fired first) and the dead-man timer restored the previous ruleset.
	ErrRolledBack = errors.New("ruleset rolled back")
	// ErrRollbackUnconfirmed: the rollback should have happened but the host could not be
	// asked whether it did (it may be unreachable: check it from outside).
	ErrRollbackUnconfirmed = errors.New("ruleset rollback not confirmed")
	// ErrDeadmanPending: another run's dead-man timer is still armed on the host.
	ErrDeadmanPending = errors.New("a dead-man timer is already pending")
)

// rollbackGrace is how long past the timer's deadline ApplyRuleset keeps asking the host
// whether the rollback fired.
const rollbackGrace = 15 * time.Second

// The dead-man state files in RunDir. The timer and a cancel race for one atomic mkdir of
// deadman.claim: whoever makes it decides, so a cancel can never half-stop a rollback.
//
//	deadman.pid    pid (= process group) of the timer
//	deadman.claim/ made by the timer before it restores, or by a cancel ("cancelled" inside)
//	deadman.fired  "rolled-back RC" once the restore ran
//	rollback.nft   "flush ruleset" + the ruleset that was live before
//	ruleset.apply.nft  the new ruleset, between arm and apply
func deadmanVars() string {
	return "D=" + runner.Quote(RunDir) + "\n"
}

// DeadmanCancelCommand is the command the confirm step runs (with sudo) over a NEW
// connection: it stops the timer and exits 0, or exits 3 when the timer already fired
// (the old ruleset is back or coming back). Running it twice is fine.
func DeadmanCancelCommand() string {
	return deadmanVars() + `if mkdir "$D/deadman.claim" 2>/dev/null; then
  echo cancelled > "$D/deadman.claim/cancelled"
  pid=$(cat "$D/deadman.pid" 2>/dev/null)
  if [ -z "$pid" ]; then echo "haltfleet: no dead-man timer is armed" >&2; exit 4; fi
  kill -TERM "-$pid" 2>/dev/null
  rm -f "$D/deadman.pid"
  echo cancelled
elif [ -e "$D/deadman.claim/cancelled" ]; then
  echo cancelled
else
  echo "haltfleet: the dead-man timer already fired; the previous ruleset is restored" >&2; exit 3
fi
`
}

// timerScript is the detached timer: $1 seconds, $2 RunDir.
const timerScript = `echo $$ > "$2/deadman.pid.tmp" && mv "$2/deadman.pid.tmp" "$2/deadman.pid"
sleep "$1"
if mkdir "$2/deadman.claim" 2>/dev/null; then
  nft -f "$2/rollback.nft"; rc=$?
  echo "rolled-back $rc" > "$2/deadman.fired.tmp"; mv "$2/deadman.fired.tmp" "$2/deadman.fired"
  rm -f "$2/deadman.pid"
fi`

// armScript stores the new ruleset (stdin), checks it, saves the live ruleset for
// rollback and starts the timer. Nothing is applied yet.
func armScript(seconds int) string {
	unit := "haltfleet-deadman-" + nonce()
	return deadmanVars() + fmt.Sprintf(`set -f; umask 077; S=%d
command -v nft >/dev/null 2>&1 || { echo "nft not found on PATH" >&2; exit %d; }
mkdir -p "$D" && chmod 700 "$D" || exit %d
if [ -e "$D/deadman.pid" ]; then pid=$(cat "$D/deadman.pid" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "dead-man timer pid $pid still running" >&2; exit %d; fi
fi
rm -rf "$D/deadman.claim" "$D/deadman.fired" "$D/deadman.pid" "$D/deadman.pid.tmp"
A="$D/ruleset.apply.nft"
{ echo 'flush ruleset'; cat; } > "$A" || exit %d
if ! out=$(nft -c -f "$A" 2>&1); then printf '%%s\n' "$out" >&2; rm -f "$A"; exit %d; fi
{ echo 'flush ruleset'; nft list ruleset; } > "$D/rollback.nft.tmp" && mv "$D/rollback.nft.tmp" "$D/rollback.nft" || exit %d
if ! out=$(nft -c -f "$D/rollback.nft" 2>&1); then
  printf 'the live ruleset does not load back as listed, so it could not be restored: %%s\n' "$out" >&2; exit %d
fi
T=%s
# Outside the SSH session: systemd-run when systemd runs this namespace (logind may kill
# the session's processes when the controller disappears), else a new session via setsid.
if [ -d /run/systemd/system ] && [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ] &&
   command -v systemd-run >/dev/null 2>&1 &&
   systemd-run --quiet --collect --unit=%s sh -c "$T" sh "$S" "$D" >/dev/null 2>&1; then :
else
  setsid sh -c "$T" sh "$S" "$D" </dev/null >/dev/null 2>&1 &
fi
i=0; while [ ! -s "$D/deadman.pid" ]; do
  i=$((i+1)); if [ $i -gt 100 ]; then echo "dead-man timer did not start" >&2; exit %d; fi; sleep 0.05
done
echo armed
`, seconds, exitNoTools, exitRunDir, exitPending, exitUpload, exitCheck, exitRollback, exitRollback,
		runner.Quote(timerScript), unit, exitTimer)
}

// applyScript loads the stored ruleset atomically. On failure nothing changed: it cancels
// the timer itself (same claim protocol) and exits exitApply.
func applyScript() string {
	return deadmanVars() + fmt.Sprintf(`A="$D/ruleset.apply.nft"
# A claim already taken means the timer fired (a delayed apply must not land after it).
if [ -e "$D/deadman.claim" ]; then rm -f "$A"; echo "the dead-man timer fired before the apply" >&2; exit %d; fi
if ! out=$(nft -f "$A" 2>&1); then
  printf '%%s\n' "$out" >&2
  if mkdir "$D/deadman.claim" 2>/dev/null; then echo cancelled > "$D/deadman.claim/cancelled"
    pid=$(cat "$D/deadman.pid" 2>/dev/null); [ -n "$pid" ] && kill -TERM "-$pid" 2>/dev/null; rm -f "$D/deadman.pid"; fi
  rm -f "$A"; exit %d
fi
rm -f "$A"
# The timer fired while nft ran: its restore may have come first, so restore again.
if [ -e "$D/deadman.claim" ] && [ ! -e "$D/deadman.claim/cancelled" ]; then
  nft -f "$D/rollback.nft"; echo "the dead-man timer fired during the apply" >&2; exit %d
fi
echo applied
`, exitFired, exitApply, exitFired)
}

// rollbackNowScript restores the previous ruleset at once when confirm failed (winning the
// claim), or waits up to $1 seconds for the timer's own restore; it prints deadman.fired.
func rollbackNowScript(waitSeconds int) string {
	return deadmanVars() + fmt.Sprintf(`if mkdir "$D/deadman.claim" 2>/dev/null; then
  pid=$(cat "$D/deadman.pid" 2>/dev/null); [ -n "$pid" ] && kill -TERM "-$pid" 2>/dev/null
  nft -f "$D/rollback.nft"; rc=$?
  echo "rolled-back $rc" > "$D/deadman.fired.tmp"; mv "$D/deadman.fired.tmp" "$D/deadman.fired"; rm -f "$D/deadman.pid"
fi
i=0; while [ ! -e "$D/deadman.fired" ] && [ $i -lt %d ]; do i=$((i+1)); sleep 0.2; done
cat "$D/deadman.fired" 2>/dev/null || { [ -e "$D/deadman.claim/cancelled" ] && echo cancelled; }
`, waitSeconds*5)
}

// ApplyRuleset applies a KindRuleset change behind a dead-man timer: it saves the live
// ruleset, arms a detached timer on the host that restores it after deadman, applies
// ch.New atomically, then calls confirm, which must cancel the timer over a NEW
// connection (running DeadmanCancelCommand). If confirm fails or the timer fired, the
// previous ruleset is restored and the error wraps ErrRolledBack. If the controller dies
// at any point, the timer restores the previous ruleset by itself.
func ApplyRuleset(ctx context.Context, r runner.Runner, ch Change, confirm func(ctx context.Context) error, deadman time.Duration) error {
	return applyRuleset(ctx, r, ch, confirm, nil, deadman)
}

// applyRuleset is ApplyRuleset; reconnect (optional) opens a new connection for the
// rollback check when r's connection died.
func applyRuleset(ctx context.Context, r runner.Runner, ch Change, confirm func(ctx context.Context) error, reconnect func(ctx context.Context) (runner.Runner, error), deadman time.Duration) error {
	host := r.Name()
	if ch.Kind != KindRuleset || ch.New == "" {
		return fmt.Errorf("%s: ruleset: ApplyRuleset needs a %s change with the ruleset in New", host, KindRuleset)
	}
	if deadman < time.Second {
		return fmt.Errorf("%s: ruleset: dead-man time %v is below one second", host, deadman)
	}
	seconds := int((deadman + time.Second - 1) / time.Second)

	arm := newSectioned()
	arm.line(armScript(seconds))
	// Taken before the arm runs: our deadline may only be earlier than the timer's.
	armed := time.Now()
	_, code, stderr, err := arm.exec(ctx, r, strings.NewReader(ch.New))
	if err != nil {
		// The timer may or may not be running; if it is, it restores an unchanged ruleset.
		return fmt.Errorf("%s: ruleset: arm dead-man timer (nothing was applied): %w", host, err)
	}
	switch code {
	case 0:
	case exitCheck:
		return fmt.Errorf("%s: ruleset: %w: %s", host, ErrRulesetInvalid, scrubTempPaths(stderr))
	case exitPending:
		return fmt.Errorf("%s: ruleset: %w (nothing was applied): %s", host, ErrDeadmanPending, stderr)
	default:
		return fmt.Errorf("%s: ruleset: arm dead-man timer (exit %d; nothing was applied): %s", host, code, stderr)
	}
	deadline := armed.Add(time.Duration(seconds) * time.Second)

	// The apply may cut our own connection; bound it by the timer so we never wait past it.
	actx, cancel := context.WithDeadline(ctx, deadline)
	_, code, stderr, err = newApply().exec(actx, r, nil)
	cancel()
	if err == nil && code == exitApply {
		return fmt.Errorf("%s: ruleset: %w: nft -f failed, nothing changed: %s", host, ErrRulesetInvalid, scrubTempPaths(stderr))
	}
	if err == nil && code != 0 {
		err = fmt.Errorf("apply script exited %d: %s", code, stderr)
	}
	if err == nil {
		cctx, cancel := context.WithDeadline(ctx, deadline)
		err = confirm(cctx)
		cancel()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("confirm over a new connection: %w", err)
	}
	return waitRollback(ctx, r, reconnect, deadline, err)
}

func newApply() *sectioned {
	s := newSectioned()
	s.line(applyScript())
	return s
}

// waitRollback makes sure the previous ruleset is back: it restores it at once over the
// existing connection when that still works, else over a new one (reconnect, when given:
// after the timer restored the old ruleset a new connection gets in again), and keeps
// asking until the timer's deadline plus rollbackGrace. It survives the caller's
// cancellation: leaving now would leave the host in an unknown state.
func waitRollback(ctx context.Context, r runner.Runner, reconnect func(ctx context.Context) (runner.Runner, error), deadline time.Time, cause error) error {
	host := r.Name()
	bound := deadline.Add(rollbackGrace)
	base := context.WithoutCancel(ctx)
	var lastErr error
	for time.Now().Before(bound) {
		wait := int(time.Until(deadline)/time.Second) + 5
		tctx, cancel := context.WithTimeout(base, time.Duration(wait+5)*time.Second)
		res, err := r.Exec(tctx, runner.Cmd{Command: rollbackNowScript(wait), Sudo: true})
		cancel()
		if err != nil && reconnect != nil && !errors.Is(err, runner.ErrSudoPassword) && !errors.Is(err, runner.ErrSudoFailed) {
			res, err = rollbackOverNew(base, reconnect, wait)
		}
		if err != nil {
			lastErr = err
			time.Sleep(time.Second)
			continue
		}
		out := strings.TrimSpace(string(res.Stdout))
		switch {
		case out == "rolled-back 0":
			return fmt.Errorf("%s: ruleset: %w: the previous ruleset was restored (%w)", host, ErrRolledBack, cause)
		case strings.HasPrefix(out, "rolled-back"):
			return fmt.Errorf("%s: ruleset: restoring the previous ruleset failed (%s) after: %w", host, out, cause)
		case out == "cancelled":
			// The confirm did cancel (its answer was lost): the new ruleset stays.
			return fmt.Errorf("%s: ruleset: confirm reported failure but the timer was cancelled; the new ruleset is live: %w", host, cause)
		}
		lastErr = fmt.Errorf("no rollback seen yet (%q)", out)
	}
	return fmt.Errorf("%s: ruleset: %w: %w (last attempt: %v)", host, ErrRollbackUnconfirmed, cause, lastErr)
}

// rollbackOverNew asks for the rollback over a fresh connection.
func rollbackOverNew(ctx context.Context, reconnect func(ctx context.Context) (runner.Runner, error), wait int) (runner.Result, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(wait+10)*time.Second)
	defer cancel()
	nr, err := reconnect(cctx)
	if err != nil {
		return runner.Result{}, fmt.Errorf("new connection: %w", err)
	}
	defer nr.Close()
	return nr.Exec(cctx, runner.Cmd{Command: rollbackNowScript(wait), Sudo: true})
}

// ErrLocked: another haltfleet run holds the host's lock.
var ErrLocked = errors.New("host locked by another haltfleet run")

const exitLocked = 75

// LockCommand takes the host lock RunDir/lock for runID (mkdir is atomic); it exits 75
// naming the holder when another run has it. The lock lives in /run: a reboot clears it.
func LockCommand(runID string) string {
	return deadmanVars() + fmt.Sprintf(`mkdir -p "$D" && chmod 700 "$D" || exit %d
if mkdir "$D/lock" 2>/dev/null; then
  # dash's printf says only "I/O error" when the write fails; tee names the cause (a full /run).
  printf '%%s\n' %s > "$D/lock/owner" 2>/dev/null || { echo x | tee "$D/lock/owner" >/dev/null; rm -rf "$D/lock"; exit %d; }
elif [ "$(cat "$D/lock/owner" 2>/dev/null)" = %s ]; then :
else echo "held by run $(cat "$D/lock/owner" 2>/dev/null) since $(date -r "$D/lock" 2>/dev/null); remove $D/lock if that run is gone" >&2; exit %d
fi
`, exitRunDir, runner.Quote(runID), exitRunDir, runner.Quote(runID), exitLocked)
}

// UnlockCommand releases the lock if runID holds it.
func UnlockCommand(runID string) string {
	return deadmanVars() + fmt.Sprintf(`if [ "$(cat "$D/lock/owner" 2>/dev/null)" = %s ]; then rm -rf "$D/lock"; fi
`, runner.Quote(runID))
}

// Lock runs LockCommand; ErrLocked when another run holds the host.
func Lock(ctx context.Context, r runner.Runner, runID string) error {
	_, err := r.Exec(ctx, runner.Cmd{Command: LockCommand(runID), Sudo: true})
	var ce *runner.CommandError
	if errors.As(err, &ce) && ce.ExitCode == exitLocked {
		return fmt.Errorf("%s: lock: %w: %s", r.Name(), ErrLocked, ce.Stderr)
	}
	if err != nil {
		return fmt.Errorf("%s: lock: %w", r.Name(), err)
	}
	return nil
}

// Unlock runs UnlockCommand.
func Unlock(ctx context.Context, r runner.Runner, runID string) error {
	if _, err := r.Exec(ctx, runner.Cmd{Command: UnlockCommand(runID), Sudo: true}); err != nil {
		return fmt.Errorf("%s: unlock: %w", r.Name(), err)
	}
	return nil
}
