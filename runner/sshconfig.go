package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
)

// SSHConfig is a parsed ssh_config(5) file: Host and Match blocks, Include, and the
// options that decide where and how we connect. Other options are ignored.
type SSHConfig struct {
	lines     []cfgLine
	dir       string // relative Include paths start here (~/.ssh, as in OpenSSH)
	home      string
	localUser string
	readFile  func(string) ([]byte, error)
	glob      func(string) ([]string, error)
}

type cfgLine struct {
	pos  string // file:line, for errors
	key  string // lower-cased keyword
	args []string
}

// LoadSSHConfig reads path, or ~/.ssh/config when path is empty (a missing default file is
// an empty config; a missing explicit file is an error).
func LoadSSHConfig(path string) (*SSHConfig, error) {
	home, _ := os.UserHomeDir()
	c := newSSHConfig(home)
	explicit := path != ""
	if !explicit {
		path = filepath.Join(home, ".ssh", "config")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	c.lines, err = parseSSHConfig(data, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseSSHConfig parses config text; Include paths resolve against home/.ssh.
func ParseSSHConfig(data []byte, home string) (*SSHConfig, error) {
	c := newSSHConfig(home)
	var err error
	c.lines, err = parseSSHConfig(data, "config")
	return c, err
}

func newSSHConfig(home string) *SSHConfig {
	lu := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		lu = u.Username
	}
	return &SSHConfig{dir: filepath.Join(home, ".ssh"), home: home, localUser: lu,
		readFile: os.ReadFile, glob: filepath.Glob}
}

func parseSSHConfig(data []byte, name string) ([]cfgLine, error) {
	var out []cfgLine
	for i, raw := range strings.Split(string(data), "\n") {
		words, err := configWords(raw)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		if len(words) == 0 {
			continue
		}
		out = append(out, cfgLine{pos: fmt.Sprintf("%s:%d", name, i+1), key: strings.ToLower(words[0]), args: words[1:]})
	}
	return out, nil
}

// configWords splits one line: the keyword ends at whitespace or '=', arguments are
// whitespace separated with double quotes grouping, and a word starting with '#' starts
// a comment.
func configWords(line string) ([]string, error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return []string{line}, nil
	}
	kw, rest := line[:i], strings.TrimLeft(line[i:], " \t")
	if strings.HasPrefix(rest, "=") {
		rest = rest[1:]
	}
	words := []string{kw}
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range rest {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (r == ' ' || r == '\t' || r == '\r'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case !quoted && !inWord && r == '#':
			return words, nil
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// cfgEval is one resolution: the first value obtained for each option wins.
type cfgEval struct {
	originalHost string
	vals         map[string][]string
	pos          map[string]string
	final        bool // second pass, for Match final/canonical
	sawFinal     bool
}

func (e *cfgEval) set(l cfgLine) {
	if l.key == "identityfile" || l.key == "certificatefile" { // accumulate, without duplicates (as ssh)
		for _, a := range l.args {
			if !slices.Contains(e.vals[l.key], a) {
				e.vals[l.key] = append(e.vals[l.key], a)
			}
		}
		return
	}
	if l.key == "proxycommand" || l.key == "proxyjump" { // mutually exclusive: the first one wins
		if _, ok := e.vals["proxy"]; ok {
			return
		}
		e.vals["proxy"] = append([]string{l.key}, l.args...)
		e.pos["proxy"] = l.pos
		return
	}
	if _, ok := e.vals[l.key]; !ok {
		e.vals[l.key], e.pos[l.key] = l.args, l.pos
	}
}

func (e *cfgEval) get(key string) string {
	if v := e.vals[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hostname is the current target host name: HostName (with %h) if obtained, else the
// name we were asked to connect to.
func (e *cfgEval) hostname() string {
	h := e.get("hostname")
	if h == "" {
		return e.originalHost
	}
	return strings.ReplaceAll(strings.ReplaceAll(h, "%h", e.originalHost), "%%", "%")
}

func (c *SSHConfig) walk(lines []cfgLine, e *cfgEval, depth int) error {
	if depth > 16 {
		return errors.New("ssh config: Include nested too deeply")
	}
	active := true
	for _, l := range lines {
		switch l.key {
		case "host":
			active = matchList(e.originalHost, l.args, true)
		case "match":
			ok, err := c.match(l, e)
			if err != nil {
				return err
			}
			active = ok
		case "include":
			if !active {
				continue
			}
			for _, pat := range l.args {
				if err := c.include(pat, e, depth); err != nil {
					return fmt.Errorf("%s: Include %s: %w", l.pos, pat, err)
				}
			}
		default:
			if active && len(l.args) > 0 {
				e.set(l)
			}
		}
	}
	return nil
}

func (c *SSHConfig) include(pat string, e *cfgEval, depth int) error {
	pat = c.expandHome(pat)
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(c.dir, pat)
	}
	files, err := c.glob(pat)
	if err != nil {
		return err
	}
	for _, f := range files { // Glob returns them sorted, as OpenSSH's glob(3) does
		data, err := c.readFile(f)
		if err != nil {
			return err
		}
		lines, err := parseSSHConfig(data, f)
		if err != nil {
			return err
		}
		if err := c.walk(lines, e, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// match evaluates a Match line. Criteria are ANDed and evaluated in order; an
// unsupported criterion is an error only when reached, as OpenSSH skips exec after a miss.
func (c *SSHConfig) match(l cfgLine, e *cfgEval) (bool, error) {
	args := l.args
	if len(args) == 0 {
		return false, fmt.Errorf("%s: Match needs criteria", l.pos)
	}
	result := true
	for i := 0; i < len(args); i++ {
		crit := strings.ToLower(args[i])
		negate := strings.HasPrefix(crit, "!")
		crit = strings.TrimPrefix(crit, "!")
		var ok bool
		switch crit {
		case "all":
			ok = true
		case "canonical", "final":
			e.sawFinal = true
			ok = e.final
		case "host", "originalhost", "user", "localuser":
			if i+1 >= len(args) {
				return false, fmt.Errorf("%s: Match %s needs an argument", l.pos, crit)
			}
			i++
			pats := strings.Split(args[i], ",")
			switch crit {
			case "host":
				ok = matchList(e.hostname(), pats, true)
			case "originalhost":
				ok = matchList(e.originalHost, pats, true)
			case "user":
				u := e.get("user")
				if u == "" {
					u = c.localUser
				}
				ok = matchList(u, pats, false)
			case "localuser":
				ok = matchList(c.localUser, pats, false)
			}
		default:
			return false, fmt.Errorf("%s: Match %s is not supported (supported: all, host, originalhost, user, localuser, canonical, final)", l.pos, crit)
		}
		if ok == negate {
			result = false
			if crit != "canonical" && crit != "final" {
				return false, nil // later criteria (perhaps exec) are not evaluated
			}
		}
	}
	return result, nil
}

// matchList is OpenSSH's match_pattern_list: any negated match rejects, else any
// positive match accepts.
func matchList(s string, pats []string, fold bool) bool {
	if fold {
		s = strings.ToLower(s)
	}
	found := false
	for _, p := range pats {
		for _, p := range strings.Split(p, ",") {
			if fold {
				p = strings.ToLower(p)
			}
			neg := strings.HasPrefix(p, "!")
			if wildMatch(strings.TrimPrefix(p, "!"), s) {
				if neg {
					return false
				}
				found = true
			}
		}
	}
	return found
}

// wildMatch matches s against a pattern with * and ? wildcards.
func wildMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildMatch(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			p, s = p[1:], s[1:]
		default:
			if s == "" || p[0] != s[0] {
				return false
			}
			p, s = p[1:], s[1:]
		}
	}
	return s == ""
}

func (c *SSHConfig) expandHome(p string) string {
	if p == "~" {
		return c.home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(c.home, p[2:])
	}
	return p
}
