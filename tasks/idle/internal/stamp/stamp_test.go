package stamp

import (
	"reflect"
	"testing"
)

func TestFormatParseRoundTrip(t *testing.T) {
	s := Stamp{Go: "go1.26.8", Sources: "abc", Binaries: map[string]string{"idle-linux-arm64": "2", "idle-linux-amd64": "1"}}
	got, err := Parse(s.Format())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip %+v, want %+v", got, s)
	}
	if _, err := Parse([]byte("# nothing\ngo go1.26.8\n")); err == nil {
		t.Error("incomplete stamp accepted")
	}
}
