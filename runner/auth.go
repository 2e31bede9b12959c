package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyring is the authentication state a Pool shares across its connections: one agent
// connection, each key file read once, each passphrase asked once.
type keyring struct {
	agentSock  string
	passphrase func(keyfile string) ([]byte, error)
	home       string

	mu        sync.Mutex
	agentOnce sync.Once
	agent     agent.ExtendedAgent
	agentConn net.Conn
	keys      map[string]*keyFile
}

// keyFile is one IdentityFile: its public half is known without decrypting, the
// private half is decrypted on first use (only if the server accepts the key).
type keyFile struct {
	path string
	pem  []byte
	pub  ssh.PublicKey
	cert *ssh.Certificate // from path-cert.pub, as OpenSSH loads it

	once   sync.Once
	signer ssh.Signer
	err    error
}

func (k *keyring) close() {
	if k.agentConn != nil {
		k.agentConn.Close()
	}
}

func (k *keyring) agentSigners() []ssh.Signer {
	k.agentOnce.Do(func() {
		if k.agentSock == "" {
			return
		}
		c, err := net.Dial("unix", k.agentSock)
		if err != nil {
			return // like ssh: an unreachable agent is skipped, key files still work
		}
		k.agentConn, k.agent = c, agent.NewClient(c)
	})
	if k.agent == nil {
		return nil
	}
	s, err := k.agent.Signers()
	if err != nil {
		return nil
	}
	return s
}

// authMethod offers keys in OpenSSH's order: agent keys (only those matching an
// IdentityFile when IdentitiesOnly), then identity files not held by the agent, each
// followed by its certificate.
func (k *keyring) authMethod(t Target, clock *handshakeTimer) ssh.AuthMethod {
	return ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		files := k.identityFiles(t)
		var out []ssh.Signer
		inAgent := map[string]bool{}
		for _, s := range k.agentSigners() {
			blob := string(plainKey(s.PublicKey()).Marshal())
			matches := false
			for _, f := range files {
				if f.pub != nil && string(f.pub.Marshal()) == blob {
					matches, inAgent[f.path] = true, true
				}
			}
			if matches || !t.IdentitiesOnly {
				out = append(out, s)
			}
		}
		for _, f := range files {
			if inAgent[f.path] || f.pub == nil {
				continue
			}
			s := ssh.Signer(&lazySigner{k: k, f: f, clock: clock})
			out = append(out, s)
			if f.cert != nil {
				if cs, err := ssh.NewCertSigner(f.cert, s); err == nil {
					out = append(out, cs)
				}
			}
		}
		return out, nil
	})
}

func plainKey(p ssh.PublicKey) ssh.PublicKey {
	if c, ok := p.(*ssh.Certificate); ok {
		return c.Key
	}
	return p
}

// identityFiles loads t's key files, or OpenSSH's default ones when none is configured.
// Missing files are skipped, as ssh does.
func (k *keyring) identityFiles(t Target) []*keyFile {
	paths := t.IdentityFiles
	if len(paths) == 0 {
		for _, n := range []string{"id_rsa", "id_ecdsa", "id_ed25519"} {
			paths = append(paths, filepath.Join(k.home, ".ssh", n))
		}
	}
	var out []*keyFile
	for _, p := range paths {
		if f := k.load(p); f != nil {
			out = append(out, f)
		}
	}
	return out
}

func (k *keyring) load(path string) *keyFile {
	k.mu.Lock()
	defer k.mu.Unlock()
	if f, ok := k.keys[path]; ok {
		return f
	}
	f := readKeyFile(path)
	k.keys[path] = f
	return f
}

func readKeyFile(path string) *keyFile {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	f := &keyFile{path: path, pem: pem}
	signer, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		f.signer, f.pub = signer, signer.PublicKey()
		f.once.Do(func() {})
	case errors.As(err, &missing) && missing.PublicKey != nil:
		f.pub = missing.PublicKey
	default: // old PEM encryption hides the public key: take it from path.pub
		if pub, err := readPublicKey(path + ".pub"); err == nil {
			f.pub = pub
		}
	}
	if c, err := readPublicKey(path + "-cert.pub"); err == nil {
		if cert, ok := c.(*ssh.Certificate); ok && f.pub != nil && bytes.Equal(cert.Key.Marshal(), f.pub.Marshal()) {
			f.cert = cert
		}
	}
	return f
}

func readPublicKey(path string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	return pub, err
}

// decrypt asks for the passphrase once per key file; a failure is remembered too, so
// a wrong passphrase is not asked again for every host.
func (k *keyring) decrypt(f *keyFile, clock *handshakeTimer) (ssh.Signer, error) {
	f.once.Do(func() {
		if clock != nil {
			clock.pause()
			defer clock.resume()
		}
		if k.passphrase == nil {
			f.err = fmt.Errorf("%w: %s is encrypted and no passphrase source is set", errKeyDecrypt, f.path)
			return
		}
		pass, err := k.passphrase(f.path)
		if err != nil {
			f.err = fmt.Errorf("%w: %s: passphrase: %w", errKeyDecrypt, f.path, err)
			return
		}
		f.signer, err = ssh.ParsePrivateKeyWithPassphrase(f.pem, pass)
		clear(pass)
		if err != nil {
			f.err = fmt.Errorf("%w: %s: %w", errKeyDecrypt, f.path, err)
		}
	})
	return f.signer, f.err
}

// lazySigner signs with a key file, decrypting it on first use.
type lazySigner struct {
	k     *keyring
	f     *keyFile
	clock *handshakeTimer // paused while the passphrase is asked and the key decrypted
}

func (s *lazySigner) PublicKey() ssh.PublicKey { return s.f.pub }

func (s *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	sg, err := s.k.decrypt(s.f, s.clock)
	if err != nil {
		return nil, err
	}
	return sg.Sign(rand, data)
}

func (s *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algo string) (*ssh.Signature, error) {
	sg, err := s.k.decrypt(s.f, s.clock)
	if err != nil {
		return nil, err
	}
	as, ok := sg.(ssh.AlgorithmSigner)
	if !ok {
		return nil, fmt.Errorf("%s: key cannot sign with %s", s.f.path, algo)
	}
	return as.SignWithAlgorithm(rand, data, algo)
}

// errKeyDecrypt marks a key the server accepted but we could not unlock.
var errKeyDecrypt = errors.New("cannot decrypt key")
