package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultConnectTimeout bounds TCP connect plus SSH handshake when nothing else does.
const DefaultConnectTimeout = 10 * time.Second

// DefaultServerAliveInterval: OpenSSH's default is off, but a halted host never sends a
// FIN, so without keepalives a command in flight at the halt would wait forever.
const DefaultServerAliveInterval = 15 * time.Second

// maxSessions stays under OpenSSH's default MaxSessions=10, leaving one for SFTP.
const maxSessions = 8

// Options configure a Pool. Zero values pick OpenSSH's defaults.
type Options struct {
	SSHConfig             *SSHConfig // nil: no ssh_config (LoadSSHConfig("") reads ~/.ssh/config)
	KnownHostsFiles       []string   // nil: ~/.ssh/known_hosts, ~/.ssh/known_hosts2
	GlobalKnownHostsFiles []string   // nil: /etc/ssh/ssh_known_hosts{,2}; empty: none
	AcceptNew             bool       // record unknown host keys (never replaces a changed one)
	Agent                 string     // ssh-agent socket; "": $SSH_AUTH_SOCK, "none": no agent
	// Passphrase is asked once per encrypted key file, only if a server accepts that key.
	Passphrase func(keyfile string) ([]byte, error)
	// BecomePassword is asked at most once per Pool, only if sudo wants a password.
	BecomePassword func() ([]byte, error)
	// Log sees every command (never its stdin), for -v.
	Log            func(host, command string)
	ConnectTimeout time.Duration // default DefaultConnectTimeout
	// ServerAliveInterval when the target sets none; default DefaultServerAliveInterval,
	// negative disables. Three unanswered keepalives drop the connection.
	ServerAliveInterval time.Duration
	MaxOutput           int // per stream; default DefaultMaxOutput
	// Dial opens TCP connections to the first hop; default net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Pool holds one SSH connection per host (jump hosts included) for a run.
type Pool struct {
	opts   Options
	keys   *keyring
	become *becomePassword
	khMu   sync.Mutex

	mu     sync.Mutex
	conns  map[string]*poolEntry
	order  []*conn
	closed bool
}

type poolEntry struct {
	ready chan struct{}
	c     *conn
	err   error
}

// NewPool prepares a pool; nothing is dialled until Get.
func NewPool(o Options) *Pool {
	home, _ := os.UserHomeDir()
	sock := o.Agent
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	} else if sock == "none" {
		sock = ""
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	if o.KnownHostsFiles == nil {
		o.KnownHostsFiles = []string{filepath.Join(home, ".ssh", "known_hosts"), filepath.Join(home, ".ssh", "known_hosts2")}
	}
	if o.GlobalKnownHostsFiles == nil {
		o.GlobalKnownHostsFiles = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	return &Pool{
		opts:   o,
		keys:   &keyring{agentSock: sock, passphrase: o.Passphrase, home: home, keys: map[string]*keyFile{}},
		become: &becomePassword{ask: o.BecomePassword},
		conns:  map[string]*poolEntry{},
	}
}

// Get returns a runner for t, dialling the host (and its jump hosts) on first use and
// reusing that connection afterwards.
func (p *Pool) Get(ctx context.Context, t Target) (*SSH, error) {
	t, err := p.resolve(t)
	if err != nil {
		return nil, err
	}
	chain, err := p.hops(t, 0)
	if err != nil {
		return nil, hostErr(t.Name, "proxy jump", err)
	}
	c, err := p.connect(ctx, t, chain)
	if err != nil {
		return nil, err
	}
	return &SSH{name: t.Name, target: t, conn: c, env: execEnv{host: t.Name, login: t.User,
		becomeUser: t.BecomeUser, become: p.become, log: p.opts.Log, maxOutput: p.opts.MaxOutput}}, nil
}

func (p *Pool) resolve(t Target) (Target, error) {
	cfg := p.opts.SSHConfig
	if cfg == nil {
		cfg = newSSHConfig(p.keys.home) // no lines: defaults only
	}
	return cfg.Resolve(t)
}

// hops turns t.ProxyJump into resolved targets, first hop first. Only the first hop's
// own ProxyJump is followed, as ssh does for -J a,b.
func (p *Pool) hops(t Target, depth int) ([]Target, error) {
	if t.ProxyJump == "" {
		return nil, nil
	}
	if depth > 8 {
		return nil, errors.New("ProxyJump chain too long (loop?)")
	}
	var out []Target
	for i, spec := range strings.Split(t.ProxyJump, ",") {
		h, err := parseHop(strings.TrimSpace(spec))
		if err != nil {
			return nil, err
		}
		if i > 0 {
			h.ProxyJump = "none"
		}
		if h, err = p.resolve(h); err != nil {
			return nil, err
		}
		if i == 0 {
			before, err := p.hops(h, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, before...)
		}
		h.ProxyJump = ""
		out = append(out, h)
	}
	return out, nil
}

// parseHop reads [user@]host[:port] or ssh://[user@]host[:port].
func parseHop(s string) (Target, error) {
	if s == "" {
		return Target{}, errors.New("empty ProxyJump hop")
	}
	if strings.HasPrefix(s, "ssh://") {
		u, err := url.Parse(s)
		if err != nil {
			return Target{}, fmt.Errorf("ProxyJump hop %q: %w", s, err)
		}
		s = u.Host
		if u.User != nil {
			s = u.User.Username() + "@" + s
		}
	}
	t := Target{Name: s}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		t.User, s = s[:i], s[i+1:]
	}
	t.Host = s
	if h, port, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return Target{}, fmt.Errorf("ProxyJump hop %q: bad port", t.Name)
		}
		t.Host, t.Port = h, n
	}
	return t, nil
}

func connKey(t Target) string {
	return t.User + "@" + net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
}

// connect returns the shared connection for t reached through chain, dialling it once
// even when many goroutines ask at the same time.
func (p *Pool) connect(ctx context.Context, t Target, chain []Target) (*conn, error) {
	key := connKey(t)
	for _, h := range chain {
		key = connKey(h) + " > " + key
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, hostErr(t.Name, "connect", errors.New("pool closed"))
	}
	e, ok := p.conns[key]
	if ok && e.c != nil && e.c.isDead() {
		ok = false // the host dropped us (rebooted, halted): dial again
	}
	if ok {
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, hostErr(t.Name, "connect", ctx.Err())
		}
		if e.err != nil {
			return nil, e.err
		}
		return e.c, nil
	}
	e = &poolEntry{ready: make(chan struct{})}
	p.conns[key] = e
	p.mu.Unlock()

	// Dial into locals: e.c and e.err are published under p.mu, which the isDead check
	// above reads them under.
	var (
		via  *conn
		c    *conn
		derr error
	)
	if len(chain) > 0 {
		via, derr = p.connect(ctx, chain[len(chain)-1], chain[:len(chain)-1])
		if derr != nil {
			derr = hostErr(t.Name, "jump host", derr)
		}
	}
	if derr == nil {
		c, derr = p.dial(ctx, t, via, key)
	}
	p.mu.Lock()
	e.c, e.err = c, derr
	if e.err != nil {
		delete(p.conns, key) // a later Get may try again
	} else {
		p.order = append(p.order, e.c)
	}
	p.mu.Unlock()
	close(e.ready)
	return e.c, e.err
}

// dial opens TCP (directly or through via) and does the SSH handshake within
// ConnectTimeout; a stalled server is cut off by closing the socket.
func (p *Pool) dial(ctx context.Context, t Target, via *conn, key string) (*conn, error) {
	timeout := t.ConnectTimeout
	if timeout == 0 {
		timeout = p.opts.ConnectTimeout
	}
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	addr := net.JoinHostPort(t.Host, strconv.Itoa(t.Port))
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var nc net.Conn
	var err error
	if via == nil {
		nc, err = p.opts.Dial(dctx, "tcp", addr)
	} else {
		nc, err = via.client.DialContext(dctx, "tcp", addr)
	}
	if err != nil {
		return nil, hostErr(t.Name, "connect "+addr, p.dialErr(ctx, dctx, timeout, err))
	}
	// The handshake gets its own clock: it restarts once the host key is verified and
	// pauses while a passphrase is asked, so a person typing is not cut off.
	timer := newHandshakeTimer(timeout, func() { nc.Close() })
	stopCtx := context.AfterFunc(ctx, func() { nc.Close() })
	defer stopCtx()
	kh := p.knownHosts(t)
	var hostKeyErr error
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{p.keys.authMethod(t, timer)},
		HostKeyCallback: func(h string, _ net.Addr, k ssh.PublicKey) error {
			hostKeyErr = kh.check(ctx, h, k)
			timer.restart()
			return hostKeyErr
		},
		HostKeyAlgorithms: kh.algorithms(addr),
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !timer.stop() || ctx.Err() != nil {
		if err == nil {
			sc.Close()
		}
		return nil, hostErr(t.Name, "handshake "+addr, p.dialErr(ctx, dctx, timeout, context.DeadlineExceeded))
	}
	if err != nil {
		nc.Close()
		return nil, hostErr(t.Name, "handshake "+addr, handshakeErr(err, hostKeyErr))
	}
	c := &conn{key: key, via: via, client: ssh.NewClient(sc, chans, reqs), dead: make(chan struct{}), slots: make(chan struct{}, maxSessions)}
	go func() {
		c.client.Wait()
		close(c.dead)
	}()
	alive := t.ServerAliveInterval
	if alive == 0 {
		alive = p.opts.ServerAliveInterval
	}
	if alive == 0 {
		alive = DefaultServerAliveInterval
	}
	if alive > 0 {
		go keepalive(c, alive)
	}
	return c, nil
}

func (p *Pool) dialErr(ctx, dctx context.Context, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.Is(dctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return withDetail(ErrTimeout, "no answer within %s", timeout)
	}
	return withDetail(ErrUnreachable, "%v", err)
}

func handshakeErr(err, hostKeyErr error) error {
	switch {
	case hostKeyErr != nil:
		return hostKeyErr
	case errors.Is(err, errKeyDecrypt):
		return withDetail(ErrAuthFailed, "%v", err)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return withDetail(ErrAuthFailed, "no offered key or method was accepted")
	}
	return withDetail(ErrUnreachable, "%v", err)
}

func (p *Pool) knownHosts(t Target) *knownHosts {
	files := t.UserKnownHostsFiles
	if len(files) == 0 {
		files = p.opts.KnownHostsFiles
	}
	return &knownHosts{files: files, global: p.opts.GlobalKnownHostsFiles,
		acceptNew: p.opts.AcceptNew || t.HostKeys == HostKeyAcceptNew, mu: &p.khMu}
}

// Release closes the connection s uses and forgets it, so memory follows the hosts in
// flight rather than every host of the run; a later Get dials again. A connection other
// connections tunnel through (a jump host) stays open until Close.
func (p *Pool) Release(s *SSH) error {
	p.mu.Lock()
	c := s.conn
	for _, o := range p.order {
		if o.via == c {
			p.mu.Unlock()
			return nil
		}
	}
	if e, ok := p.conns[c.key]; ok && e.c == c {
		delete(p.conns, c.key)
	}
	p.order = slices.DeleteFunc(p.order, func(o *conn) bool { return o == c })
	p.mu.Unlock()
	if err := c.close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Close closes every connection, jump hosts last.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	order := p.order
	p.order = nil
	p.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		if err := order[i].close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	p.keys.close()
	return errors.Join(errs...)
}
