package tasks

import (
	"strings"
	"testing"
)

func TestValidateSysctl(t *testing.T) {
	ok := map[string]string{
		"net.ipv4.ip_forward":               "1",
		"net/ipv4/conf/all/rp_filter":       "2",
		"net.ipv4.conf.eth0/100.forwarding": "1",
		"net.ipv4.ip_local_port_range":      "32768\t60999",
		"net.netfilter.nf_conntrack_max":    "262144",
		"net.ipv6.conf.br-lan.disable_ipv6": "0",
		"kernel.printk":                     "3 4 1 3",
		"net.core.default_qdisc":            "fq_codel",
		"net.ipv4.tcp_congestion_control":   "",
		"net.ipv4.neigh.default.gc_thresh3": "4096",
		"vm.dirty_ratio":                    "10",
	}
	for k, v := range ok {
		if err := ValidateSysctl(k, v); err != nil {
			t.Errorf("%s=%q: %v", k, v, err)
		}
	}
	bad := []struct{ k, v string }{
		{"", "1"},
		{"-a", "1"}, // sysctl would read it as an option
		{"net.ipv4.ip_forward;reboot", "1"},
		{"net/../../etc/shadow", "1"},
		{"net..ipv4", "1"},
		{".net.ipv4", "1"},
		{"net.ipv4.", "1"},
		{"/proc/sys/net", "1"},
		{"Net.IPv4", "1"}, // real keys are lower case; refuse rather than guess
		{"net.ipv4 ip_forward", "1"},
		{"net.ipv4.ip_forward", "1\nkernel.modprobe = /tmp/x"}, // would inject a line into the conf file
		{"net.ipv4.ip_forward", "1\r"},
		{"net.ipv4.ip_forward", "1\x00"},
		{strings.Repeat("a", 300), "1"},
	}
	for _, c := range bad {
		if err := ValidateSysctl(c.k, c.v); err == nil {
			t.Errorf("%q=%q: want error", c.k, c.v)
		}
	}
}

func TestSysctlFileContent(t *testing.T) {
	got := SysctlFileContent(map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.ip_local_port_range": "1024\t  65000"})
	want := "# Written by haltfleet; edit the inventory's sysctls instead.\n" +
		"net.ipv4.ip_forward = 1\nnet.ipv4.ip_local_port_range = 1024 65000\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
