package cli

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haltfleet/haltfleet/internal/testenv"
	"github.com/haltfleet/haltfleet/inventory"
	"github.com/haltfleet/haltfleet/tasks"
)

// The JUnit report validates against the schema Jenkins reads, whatever the diffs hold
// (markup, control characters), and the validator does reject a broken document.
func TestJUnitValidatesAgainstJenkinsSchema(t *testing.T) {
	testenv.NeedCommand(t, "xmllint")
	results := []auditResult{
		{Host: "fw1", State: "live", Status: auditInSync, Duration: time.Second},
		{Host: "fw2", State: "live", Status: auditDrift, Drift: []driftItem{
			{Item: "ruleset", Summary: "apply the ruleset", Diff: "--- live\n+++ desired\n-\t\ttcp dport 8080 accept <&> \x1b[31m\n"},
			{Item: "sysctl net.ipv4.ip_forward", Summary: "set 1 (now 0)"}}},
		{Host: "fw3", State: "halted", Status: auditDrift, Drift: []driftItem{{Item: "probe lan1 -> tcp 10.0.0.1:81", Summary: "open, expected closed"}},
			Probes: []tasks.ProbeResult{{Probe: inventory.Probe{From: "lan1", To: "10.0.0.1:81", Proto: "tcp", Expect: "closed"}, Open: true}}},
		{Host: "fw4", State: "live", Status: auditError, Error: "fw4: connect: unreachable \"quoted\""},
	}
	var buf bytes.Buffer
	if err := writeJUnit(&buf, "haltfleet audit hosts.yml", time.Now(), 3*time.Second, results); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.xml")
	os.WriteFile(good, buf.Bytes(), 0o644)
	validateJUnit(t, good)
	var doc junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Suites[0]
	if doc.Tests != 4 || s.Failures != 2 || s.Errors != 1 || len(s.Cases) != 4 || s.Cases[1].Failure == nil ||
		!strings.Contains(s.Cases[1].Failure.Text, "tcp dport 8080 accept <&>") || s.Cases[3].Error == nil || s.Cases[0].Failure != nil {
		t.Errorf("report: %+v", doc)
	}
	// Negative control: a testcase without its required name must not validate.
	bad := filepath.Join(dir, "bad.xml")
	os.WriteFile(bad, []byte(strings.Replace(buf.String(), `<testcase name="fw1"`, `<testcase`, 1)), 0o644)
	if out, err := exec.Command("xmllint", "--noout", "--schema", "testdata/jenkins-junit.xsd", bad).CombinedOutput(); err == nil {
		t.Errorf("a testcase without a name validated:\n%s", out)
	}
}
