package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/haltfleet/haltfleet/runner"
)

// Canons remembers the canonical form of desired rulesets for a run. How nft lists a
// ruleset depends on the ruleset, nft's version, the kernel and the interface names its
// rules may resolve, so hosts that share those share the listing: the first host of each
// such key loads the ruleset in a throwaway network namespace (one extra round trip),
// every other host only lists its live ruleset and compares on the controller.
// The zero value is not usable; a nil *Canons computes every time.
type Canons struct {
	mu sync.Mutex
	m  map[string]*canonEntry
	// pending: desired-ruleset hash → closed when the host that claimed it (see claim)
	// has published its canonical form, so hosts of the same kind wait for it instead of
	// each loading the ruleset themselves.
	pending map[string]chan struct{}
}

type canonEntry struct {
	ready chan struct{}
	canon []string
	text  string // nft -s list ruleset as loaded in the namespace, for diffs
	err   error
}

// NewCanons returns an empty cache; share one across the hosts of a run.
func NewCanons() *Canons {
	return &Canons{m: map[string]*canonEntry{}, pending: map[string]chan struct{}{}}
}

func desiredHash(desired string) string {
	h := sha256.Sum256([]byte(desired))
	return hex.EncodeToString(h[:])
}

// claim makes the caller the first host of the run to see desired: it canonicalises it
// alongside its own read (a second session on the same connection, so the read and the
// namespace load overlap) and must call publish once it knows its key, even on failure.
// ok is false for every later caller, and for a nil cache.
func (c *Canons) claim(desired string) (publish func(key string, canon []string, text string, err error), ok bool) {
	if c == nil {
		return nil, false
	}
	h := desiredHash(desired)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.pending[h]; taken {
		return nil, false
	}
	ch := make(chan struct{})
	c.pending[h] = ch
	var once sync.Once
	return func(key string, canon []string, text string, err error) {
		once.Do(func() {
			c.mu.Lock()
			if _, exists := c.m[key]; !exists && key != "" && (err == nil || errors.Is(err, ErrRulesetInvalid)) {
				e := &canonEntry{ready: make(chan struct{}), canon: canon, text: text, err: err}
				close(e.ready)
				c.m[key] = e
			}
			c.mu.Unlock()
			close(ch)
		})
	}, true
}

// waitClaim waits until the host that claimed desired has published.
func (c *Canons) waitClaim(ctx context.Context, desired string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	ch := c.pending[desiredHash(desired)]
	c.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// canonKey names what a canonical listing depends on. ifaces is the host's interface
// list (the namespace gets dummies of the same names).
func canonKey(desired, nftVersion string, f Facts, ifaces []string) string {
	return strings.Join([]string{desiredHash(desired), nftVersion, f.Kernel, f.Machine, strings.Join(ifaces, ",")}, "\x00")
}

// get returns the canonical form for key, running compute at most once per key while it
// succeeds. An invalid ruleset is a property of the key and is shared; any other failure
// (a transport error, a host without unshare) is the computing host's own, so a waiter
// computes on its own host instead.
func (c *Canons) get(ctx context.Context, key string, compute func() ([]string, string, error)) ([]string, string, error) {
	if c == nil {
		return compute()
	}
	for {
		c.mu.Lock()
		e, ok := c.m[key]
		if !ok {
			e = &canonEntry{ready: make(chan struct{})}
			c.m[key] = e
			c.mu.Unlock()
			e.canon, e.text, e.err = compute()
			if e.err != nil && !errors.Is(e.err, ErrRulesetInvalid) {
				c.mu.Lock()
				delete(c.m, key)
				c.mu.Unlock()
			}
			close(e.ready)
			return e.canon, e.text, e.err
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
		if e.err == nil || errors.Is(e.err, ErrRulesetInvalid) {
			return e.canon, e.text, e.err
		}
	}
}

// canonicaliseDesired checks desired with nft -c and loads it in a throwaway network
// namespace on the host, returning its canonical form and its stateless listing. Errors
// carry no host name (a cached one is shared): callers add it.
func canonicaliseDesired(ctx context.Context, r runner.Runner, desired string) ([]string, string, error) {
	s := newSectioned()
	tmp := RunDir + "/ruleset.check." + nonce() + ".nft"
	s.line("set -f; umask 077")
	s.line(fmt.Sprintf(`for c in nft unshare; do command -v $c >/dev/null 2>&1 || { echo "$c not found on PATH" >&2; exit %d; }; done`, exitNoTools))
	s.line(fmt.Sprintf("D=%s; N=%s", runner.Quote(RunDir), runner.Quote(tmp)))
	s.line(fmt.Sprintf(`mkdir -p "$D" && chmod 700 "$D" || exit %d`, exitRunDir))
	s.line(`trap 'rm -f "$N"' EXIT`)
	s.line(fmt.Sprintf(`cat > "$N" || exit %d`, exitUpload))
	s.line(fmt.Sprintf(`if ! out=$(nft -c -f "$N" 2>&1); then printf '%%s\n' "$out" >&2; exit %d; fi`, exitCheck))
	// The throwaway namespace gets dummy interfaces named like the host's, so rules that
	// name a device by index (iif, netdev hooks) load there as they do on the host.
	s.line(`set +f; ifs=; for i in /sys/class/net/*; do [ -e "$i" ] && ifs="$ifs ${i##*/}"; done; set -f`)
	s.line("mark canon-json")
	inner := `f=$1; m=$2; shift 2; for i; do [ "$i" = lo ] || ip link add name "$i" type dummy 2>/dev/null; done; ` +
		`nft -f "$f" && nft -s -j list ruleset && printf '\n%s canon-text\n' "$m" && nft -s list ruleset`
	s.line(fmt.Sprintf(`unshare -n sh -c %s sh "$N" %s $ifs || exit %d`, runner.Quote(inner), s.marker, exitCanon))
	sec, code, stderr, err := s.exec(ctx, r, strings.NewReader(desired))
	if err != nil {
		return nil, "", err
	}
	stderr = scrubTempPaths(stderr)
	switch code {
	case 0:
	case exitCheck:
		return nil, "", fmt.Errorf("%w: %s", ErrRulesetInvalid, stderr)
	case exitCanon:
		return nil, "", fmt.Errorf("%w: loading it in a throwaway network namespace failed: %s", ErrRulesetInvalid, stderr)
	default:
		return nil, "", fmt.Errorf("canonicalise script exited %d: %s", code, stderr)
	}
	canon, err := CanonicalRuleset([]byte(sec["canon-json"]))
	if err != nil {
		return nil, "", fmt.Errorf("desired: %w", err)
	}
	return canon, sec["canon-text"], nil
}

// nftVersion reads the version from a JSON listing's metainfo ("" when absent).
func nftVersion(listing []byte) string {
	var doc struct {
		Nftables []struct {
			Metainfo *struct {
				Version string `json:"version"`
			} `json:"metainfo"`
		} `json:"nftables"`
	}
	if json.Unmarshal(listing, &doc) != nil {
		return ""
	}
	for _, o := range doc.Nftables {
		if o.Metainfo != nil {
			return o.Metainfo.Version
		}
	}
	return ""
}

// liveTexts lists the live ruleset as text for a diff: stateless, and in full (what a
// rollback restores). Only needed when the canonical forms differ.
func liveTexts(ctx context.Context, r runner.Runner) (stateless, full string, err error) {
	s := newSectioned()
	s.line("mark live-text")
	s.line(fmt.Sprintf("nft -s list ruleset || exit %d", exitListLive))
	s.line("mark old-text")
	s.line(fmt.Sprintf("nft list ruleset || exit %d", exitListLive))
	sec, code, stderr, err := s.exec(ctx, r, nil)
	if err != nil {
		return "", "", err
	}
	if code != 0 {
		return "", "", fmt.Errorf("listing the live ruleset exited %d: %s", code, stderr)
	}
	return sec["live-text"], sec["old-text"], nil
}
