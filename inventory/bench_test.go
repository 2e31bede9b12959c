package inventory

import "testing"

// BenchmarkParseRanges loads 20000 hosts from ranges spread over nested groups.
func BenchmarkParseRanges(b *testing.B) {
	src := []byte(`all:
  vars: {site: x}
  children:
    dc:
      vars: {dc: one}
      children:
        fw:
          hosts:
            fw[00000:09999]:
              role: edge
        lb:
          hosts:
            lb[00000:09999]:
            fw[00000:04999]:
`)
	for b.Loop() {
		inv, err := Parse("bench.yml", src)
		if err != nil || len(inv.Hosts) != 20000 {
			b.Fatalf("%v, %d hosts", err, len(inv.Hosts))
		}
	}
}
