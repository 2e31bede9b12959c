package runner

import (
	"sync"
	"time"
)

// handshakeTimer closes the connection when the handshake stalls longer than d.
type handshakeTimer struct {
	mu     sync.Mutex
	d      time.Duration
	t      *time.Timer
	fired  bool
	paused bool
}

func newHandshakeTimer(d time.Duration, onFire func()) *handshakeTimer {
	h := &handshakeTimer{d: d}
	h.t = time.AfterFunc(d, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.paused {
			h.fired = true
			onFire()
		}
	})
	return h
}

func (h *handshakeTimer) restart() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.fired {
		h.t.Reset(h.d)
	}
}

// pause and resume bracket a prompt to the user.
func (h *handshakeTimer) pause() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.paused = true
	h.t.Stop()
}

func (h *handshakeTimer) resume() {
	h.mu.Lock()
	h.paused = false
	h.mu.Unlock()
	h.restart()
}

// stop ends the clock; false means it had already fired.
func (h *handshakeTimer) stop() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.t.Stop()
	return !h.fired
}

// keepalive asks the server for a reply every interval and drops the connection after
// three unanswered intervals (ServerAliveCountMax's default), as ssh does.
func keepalive(c *conn, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				c.client.Close()
				return
			}
		case <-time.After(3 * interval):
			c.client.Close()
			return
		case <-c.dead:
			return
		}
	}
}
