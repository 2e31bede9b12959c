package tasks

import (
	"regexp"
	"strings"
)

// distroResolver recognises the distribution from one source; ok is false when the
// source is absent or says nothing usable. Resolvers run in order, first hit wins.
type distroResolver func(d dump) (Distro, bool)

var distroResolvers = []distroResolver{
	osRelease("/etc/os-release"),
	osRelease("/usr/lib/os-release"),
	redhatRelease,
	alpineRelease,
	archRelease,
	debianVersion,
}

func resolveDistro(d dump) Distro {
	for _, r := range distroResolvers {
		if ds, ok := r(d); ok {
			return ds
		}
	}
	return Distro{ID: "unknown"}
}

// osRelease reads an os-release(5) file. Rolling distributions (Arch, Void, Debian sid)
// have no VERSION_ID; Debian's is then taken from /etc/debian_version.
func osRelease(path string) distroResolver {
	return func(d dump) (Distro, bool) {
		s, ok := d.file(path)
		if !ok {
			return Distro{}, false
		}
		kv := keyValues(s)
		if kv["ID"] == "" {
			return Distro{}, false
		}
		ds := Distro{
			ID:        strings.ToLower(kv["ID"]),
			IDLike:    words(strings.ToLower(kv["ID_LIKE"])),
			VersionID: kv["VERSION_ID"],
			Name:      kv["PRETTY_NAME"],
			Source:    path,
		}
		if ds.Name == "" {
			ds.Name = kv["NAME"]
		}
		if ds.VersionID == "" && ds.ID == "debian" {
			if v, ok := d.file("/etc/debian_version"); ok {
				ds.VersionID = strings.TrimSpace(v)
			}
		}
		return ds, true
	}
}

// "<product> release <version> (<codename>)", the format of every /etc/redhat-release
// since Red Hat Linux 6.2 ("Red Hat Linux release 6.2 (Zoot)").
var redhatLine = regexp.MustCompile(`^(.+?) release ([0-9][0-9A-Za-z._-]*)`)

// redhatProducts maps the product prefix of redhat-release to an os-release style ID,
// longest prefixes first so "Red Hat Enterprise Linux" wins over "Red Hat Linux".
var redhatProducts = []struct {
	prefix string
	id     string
	like   []string
}{
	{"Red Hat Enterprise Linux", "rhel", []string{"fedora"}},
	{"Red Hat Linux", "redhat", nil},
	{"CentOS Stream", "centos", []string{"rhel", "fedora"}},
	{"CentOS", "centos", []string{"rhel", "fedora"}},
	{"Rocky Linux", "rocky", []string{"rhel", "centos", "fedora"}},
	{"AlmaLinux", "almalinux", []string{"rhel", "centos", "fedora"}},
	{"Scientific Linux", "scientific", []string{"rhel", "fedora"}},
	{"Oracle Linux", "ol", []string{"fedora"}},
	{"Fedora", "fedora", nil},
}

func redhatRelease(d dump) (Distro, bool) {
	s, ok := d.file("/etc/redhat-release")
	if !ok {
		return Distro{}, false
	}
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	line = strings.TrimSpace(line)
	m := redhatLine.FindStringSubmatch(line)
	if m == nil {
		return Distro{}, false
	}
	ds := Distro{ID: "rhel", VersionID: m[2], Name: line, Source: "/etc/redhat-release"}
	for _, p := range redhatProducts {
		if strings.HasPrefix(m[1], p.prefix) {
			ds.ID, ds.IDLike = p.id, p.like
			return ds, true
		}
	}
	ds.IDLike = []string{"rhel"} // an unknown rebuild still speaks Red Hat
	ds.ID = strings.ToLower(strings.Fields(m[1])[0])
	return ds, true
}

func alpineRelease(d dump) (Distro, bool) {
	s, ok := d.file("/etc/alpine-release")
	if !ok {
		return Distro{}, false
	}
	v := strings.TrimSpace(s)
	return Distro{ID: "alpine", VersionID: v, Name: "Alpine Linux " + v, Source: "/etc/alpine-release"}, true
}

// archRelease: /etc/arch-release exists and is empty on Arch, so its presence is the fact.
func archRelease(d dump) (Distro, bool) {
	if _, ok := d.file("/etc/arch-release"); !ok {
		return Distro{}, false
	}
	return Distro{ID: "arch", Name: "Arch Linux", Source: "/etc/arch-release"}, true
}

// debianVersion: "12.11", "3.0", or "trixie/sid" on testing and unstable.
func debianVersion(d dump) (Distro, bool) {
	s, ok := d.file("/etc/debian_version")
	if !ok {
		return Distro{}, false
	}
	v := strings.TrimSpace(s)
	ds := Distro{ID: "debian", Name: "Debian GNU/Linux " + v, Source: "/etc/debian_version"}
	if v != "" && v[0] >= '0' && v[0] <= '9' {
		ds.VersionID = v
	}
	return ds, true
}

// words is strings.Fields with nil for none, so Facts compare and marshal the same
// whichever resolver built them.
func words(s string) []string {
	if f := strings.Fields(s); len(f) > 0 {
		return f
	}
	return nil
}
