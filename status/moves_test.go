package status

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// writeMoves writes DIR/moves.json as the supervisor does.
func writeMoves(t *testing.T, dir string, moves ...localcluster.MoveStatus) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"moves": moves})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, localcluster.MovesFileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The view shows a bucket move while it runs (bucket, source → target, phase, objects
// copied), says when it has heard nothing of it for a while, shows it ended, and
// shows the cell map's version on the map group and on each gateway, naming a
// gateway still on an older map.
func TestMovesAndMapVersion(t *testing.T) {
	idx := newFakeNode(t, "cell-0-index-0", cell.RoleIndex, "cell-0")
	m0 := newFakeNode(t, "map-0", cell.RoleMap, "")
	m0.leader, m0.mapVersion = true, 7
	m1 := newFakeNode(t, "map-1", cell.RoleMap, "")
	m1.mapVersion = 7
	gw0 := newFakeNode(t, "gateway-0", cell.RoleGateway, "")
	gw0.mapVersion = 6
	gw1 := newFakeNode(t, "gateway-1", cell.RoleGateway, "")
	gw1.mapVersion = 7
	members := &fakeMembers{}
	members.set(idx, m0, m1, gw0, gw1)
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	dir := t.TempDir()
	c, err := NewCollector(Config{Members: members, DataDir: dir, Now: now, StaleAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// No moves.json: no move, and the map's version.
	c.Pass(ctx)
	s := c.Snapshot()
	if len(s.Moves) != 0 {
		t.Errorf("moves %+v before any was recorded", s.Moves)
	}
	m := s.CellMap
	if m == nil || m.Version != 7 || len(m.Members) != 2 || !m.Members[0].Leader || len(m.Gateways) != 2 {
		t.Fatalf("cell map %+v, want version 7 on two members (map-0 leading) and two gateways", m)
	}
	if !slices.Equal(m.Behind, []string{"gateway-0"}) {
		t.Errorf("gateways behind %v, want gateway-0 (version 6 of 7)", m.Behind)
	}

	// A move in progress.
	running := localcluster.MoveStatus{PlanID: "4be1a09c22f1", Bucket: "photos", Source: "cell-0", Target: "cell-2", Phase: "copy",
		Objects: 120, Total: 400, Bytes: 120 << 10, ObjectsPerSec: 60, ETA: 5 * time.Second, MapVersion: 7,
		Started: now().Add(-2 * time.Second), Updated: now()}
	old := localcluster.MoveStatus{PlanID: "0d5e4a110000", Bucket: "logs", Source: "cell-1", Target: "cell-0", Phase: "done",
		Objects: 30, Total: 30, Started: now().Add(-time.Hour), Updated: now().Add(-time.Hour), Ended: now().Add(-time.Hour), WritePause: 80 * time.Millisecond}
	writeMoves(t, dir, running, old)
	c.Pass(ctx)
	s = c.Snapshot()
	if len(s.Moves) != 2 {
		t.Fatalf("moves %+v, want the running one and the old one", s.Moves)
	}
	got := s.Moves[0]
	if !got.InProgress || got.Bucket != "photos" || got.Source != "cell-0" || got.Target != "cell-2" || got.Phase != "copy" ||
		got.Objects != 120 || got.Total != 400 || got.Silent {
		t.Errorf("move in progress shown as %+v", got)
	}
	if s.Moves[1].InProgress || s.Moves[1].Bucket != "logs" {
		t.Errorf("the ended move shown as %+v", s.Moves[1])
	}
	if !strings.HasSuffix(s.Source.MovesFile, localcluster.MovesFileName) {
		t.Errorf("source says moves come from %q", s.Source.MovesFile)
	}

	// The supervisor records nothing for longer than MoveSilentAfter: the view says so.
	clock.Lock()
	clock.now = clock.now.Add(MoveSilentAfter + time.Second)
	clock.Unlock()
	c.Pass(ctx)
	if got := c.Snapshot().Moves[0]; !got.InProgress || !got.Silent || got.SilentSeconds < MoveSilentAfter.Seconds() {
		t.Errorf("a move unheard of for %v shown as %+v, want silent", MoveSilentAfter, got)
	}

	// The move ends, the map flips to version 8 and every gateway has it.
	running.Phase, running.Objects, running.Ended, running.Updated = "done", 402, now(), now()
	writeMoves(t, dir, running, old)
	m0.mapVersion, m1.mapVersion, gw0.mapVersion, gw1.mapVersion = 8, 8, 8, 8
	c.Pass(ctx)
	s = c.Snapshot()
	if got := s.Moves[0]; got.InProgress || got.Phase != "done" || got.Objects != 402 {
		t.Errorf("the move that ended shown as %+v", got)
	}
	if m := s.CellMap; m == nil || m.Version != 8 || len(m.Behind) != 0 {
		t.Errorf("cell map after the move %+v, want version 8 everywhere", m)
	}

	// The page's JSON carries both, as the page's script reads them.
	srv := httptest.NewServer(Handler(c.Snapshot))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Moves []struct {
			Bucket     string `json:"bucket"`
			Source     string `json:"source"`
			Target     string `json:"target"`
			Phase      string `json:"phase"`
			Objects    int64  `json:"objects_copied"`
			Total      int64  `json:"objects_planned"`
			InProgress bool   `json:"in_progress"`
		} `json:"moves"`
		CellMap struct {
			Version  uint64 `json:"version"`
			Gateways []struct {
				ID      string `json:"id"`
				Version uint64 `json:"version"`
			} `json:"gateways"`
		} `json:"cell_map"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Moves) != 2 || page.Moves[0].Bucket != "photos" || page.Moves[0].Target != "cell-2" || page.Moves[0].Objects != 402 ||
		page.CellMap.Version != 8 || len(page.CellMap.Gateways) != 2 || page.CellMap.Gateways[0].Version != 8 {
		t.Errorf("/api/status: %+v", page)
	}
	// The page's script draws what it reads.
	js, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"moves", "in_progress", "objects_copied", "objects_planned", "phase", "cell_map", "behind"} {
		if !strings.Contains(string(js), field) {
			t.Errorf("the page's script never reads %q", field)
		}
	}
}
