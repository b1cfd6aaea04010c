package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cellarsim/cellar/cell"
)

func TestStartToReadyIsExported(t *testing.T) {
	d, err := New(Options{NodeID: "m-0", Role: cell.RoleStorage, Cell: "cell-0", FastGossip: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(nil)
	scrape := func() string {
		resp, err := http.Get("http://" + d.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if m := scrape(); !strings.Contains(m, `cellar_node_ready{cell="cell-0",tier="storage"} 0`) ||
		!strings.Contains(m, `cellar_node_start_to_ready_seconds{cell="cell-0",tier="storage"} 0`) {
		t.Fatalf("before ready, metrics lack the zero values:\n%s", grep(m, "cellar_node"))
	}
	d.SetState(cell.StateReady, 1)
	m := scrape()
	if !strings.Contains(m, `cellar_node_ready{cell="cell-0",tier="storage"} 1`) {
		t.Fatalf("after ready:\n%s", grep(m, "cellar_node"))
	}
	if strings.Contains(m, `cellar_node_start_to_ready_seconds{cell="cell-0",tier="storage"} 0`+"\n") {
		t.Fatalf("start to ready still 0 after ready:\n%s", grep(m, "cellar_node"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
