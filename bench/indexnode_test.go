package bench

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIndexNodeArgs(t *testing.T) {
	args := indexNodeArgs(2, "/data/cell-2-index-0", "slowdown")
	if strings.Join(args[:2], " ") != "daemon index" {
		t.Fatalf("args %q do not run an index node", args)
	}
	flags := map[string]string{}
	for _, a := range args[2:] {
		name, value, ok := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") || !ok {
			t.Fatalf("args %q: %q is not --flag=value", args, a)
		}
		flags[name] = value
	}
	for flag, want := range map[string]string{
		"--id":              indexNodeID(2),
		"--cell":            "cell-2",
		"--data-dir":        "/data/cell-2-index-0",
		"--rebuild-pending": "slowdown",
		"--log-format":      "json", // copyLog reads the addresses from it
		"--grpc-addr":       "127.0.0.1:0",
		"--admin-addr":      "127.0.0.1:0",
		"--gossip-addr":     "127.0.0.1:0",
	} {
		if flags[flag] != want {
			t.Errorf("%s %q, want %q", flag, flags[flag], want)
		}
	}
}

// TestCopyLogFindsTheAddresses: the node's log is copied whole, and the addresses
// of its "daemon started" line are handed over once.
func TestCopyLogFindsTheAddresses(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "node.log")
	w, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := `{"msg":"opening"}
{"msg":"daemon started","grpc":"127.0.0.1:4001","admin":"127.0.0.1:4002"}
{"msg":"daemon started","grpc":"127.0.0.1:5001","admin":"127.0.0.1:5002"}
not JSON
`
	addrs := make(chan [2]string, 2)
	copyLog(io.NopCloser(strings.NewReader(log)), w, addrs)
	close(addrs)
	var got [][2]string
	for a := range addrs {
		got = append(got, a)
	}
	if len(got) != 1 || got[0] != [2]string{"127.0.0.1:4001", "127.0.0.1:4002"} {
		t.Errorf("addresses %v, want those of the first start line only", got)
	}
	b, err := os.ReadFile(logFile)
	if err != nil || string(b) != log {
		t.Errorf("log copied as %q (%v), want %q", b, err, log)
	}
}
