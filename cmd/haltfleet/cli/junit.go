package cli

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// JUnit XML as Jenkins, GitLab and most CI systems read it (testdata/jenkins-junit.xsd):
// one testsuite, one testcase per host; drift is a <failure>, a host that could not be
// checked an <error>.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Hostname  string      `xml:"hostname,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Error     *junitProblem `xml:"error,omitempty"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func writeJUnit(w io.Writer, name string, start time.Time, took time.Duration, results []auditResult) error {
	host, _ := os.Hostname()
	suite := junitSuite{Name: name, Tests: len(results), Time: seconds(took),
		Timestamp: start.UTC().Format("2006-01-02T15:04:05"), Hostname: host}
	for _, r := range results {
		c := junitCase{Name: r.Host, Classname: "haltfleet.audit." + r.State, Time: seconds(r.Duration)}
		var out strings.Builder
		for _, p := range r.Probes {
			fmt.Fprintf(&out, "probe %s -> %s %s: %s, expected %s\n", p.Probe.From, p.Probe.Proto, p.Probe.To, openWord(p.Open), p.Probe.Expect)
		}
		c.SystemOut = out.String()
		switch r.Status {
		case auditError:
			suite.Errors++
			c.Error = &junitProblem{Message: oneLine(r.Error), Type: "error", Text: r.Error}
		case auditDrift:
			suite.Failures++
			var items []string
			var text strings.Builder
			for _, d := range r.Drift {
				items = append(items, d.Item)
				fmt.Fprintf(&text, "~ [%s] %s\n", d.Item, d.Summary)
				writeIndented(&text, d.Diff, "    ")
			}
			c.Failure = &junitProblem{Message: oneLine(fmt.Sprintf("%d drifted: %s", len(r.Drift), strings.Join(items, ", "))),
				Type: "drift", Text: text.String()}
		}
		suite.Cases = append(suite.Cases, c)
	}
	doc := junitSuites{Name: "haltfleet audit", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
