package fleetlab

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// markerEnv is in every host init's environment: HALTFLEET_FLEET=<prefix>.
const markerEnv = "HALTFLEET_FLEET="

// hasMarker reports whether pid's environment carries the fleet's marker.
func hasMarker(pid int, prefix string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte(markerEnv + prefix)
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.Equal(kv, want) {
			return true
		}
	}
	return false
}

// ours reports whether pid is a live (not zombie) host init of this fleet, so a
// recycled pid is never mistaken for one.
func ours(pid int, prefix string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i < 0 || i+2 >= len(s) || s[i+2] == 'Z' {
		return false
	}
	return hasMarker(pid, prefix)
}

// nsInode is the inode of a network namespace file (/run/netns/X or /proc/P/ns/net).
func nsInode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// fleetProcs lists every live process that belongs to the fleet: marked (a host's
// init) or inside one of the given network namespaces (everything a host runs, and
// anything someone started there with ip netns exec).
func fleetProcs(prefix string, netns map[uint64]bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if netns[nsInode("/proc/"+e.Name()+"/ns/net")] || hasMarker(pid, prefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}
