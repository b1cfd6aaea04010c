package mapgroup

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/daemon"
	"github.com/cellarsim/cellar/internal/testaddr"
	"github.com/cellarsim/cellar/internal/testwait"
)

func TestGroupHasLeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		state    raft.RaftState
		leader   string
		contact  time.Duration
		expected bool
	}{
		{"a follower that heard from its leader", raft.Follower, "map-1", time.Second, true},
		{"a follower that knows no leader", raft.Follower, "", time.Second, false},
		{"a follower whose leader went quiet", raft.Follower, "map-1", leaderContact + time.Second, false},
		{"a candidate", raft.Candidate, "", 0, false},
		{"a member that names itself without serving", raft.Follower, "map-0", 0, false},
		{"a leader not serving yet (before its barrier)", raft.Leader, "map-0", 0, false},
	} {
		if got := groupHasLeader(tc.state, tc.leader, "map-0", tc.contact); got != tc.expected {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.expected)
		}
	}
}

// logBuffer collects a member's log lines, raft's included.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// member is one map group member run by a test.
type member struct {
	cfg  Config
	logs *logBuffer
	done chan error
	stop context.CancelFunc
}

func newMember(t *testing.T, id, raftAddr string, peers, join []string, gossip string) *member {
	logs := &logBuffer{}
	return &member{logs: logs, cfg: Config{
		Options: daemon.Options{NodeID: id, GRPCAddr: testaddr.Free(t), AdminAddr: testaddr.Free(t), GossipAddr: gossip,
			Join: join, FastGossip: true, StopTimeout: time.Second,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		DataDir: t.TempDir(), RaftAddr: raftAddr, Peers: peers,
	}}
}

func (m *member) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop, m.done = cancel, make(chan error, 1)
	go func() { m.done <- Run(ctx, m.cfg) }()
	t.Cleanup(func() {
		m.stop()
		if err := <-m.done; err != nil {
			t.Errorf("%s stopped with: %v", m.cfg.NodeID, err)
		}
	})
}

// readyz is the member's /readyz: its status code and body ("" while it does not
// answer yet).
func (m *member) readyz() (int, string) {
	resp, err := http.Get("http://" + m.cfg.AdminAddr + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (m *member) client(t *testing.T) cellarv1.CellMapClient {
	cc, err := grpc.NewClient(m.cfg.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cellarv1.NewCellMapClient(cc)
}

// A member says ready only once its group has a leader it reaches: a group of one
// takes a change the moment its member is ready; a member of a group of two whose
// other member is away stays "starting" through its elections, and becomes ready
// once the other member runs.
func TestReadyOnlyWithALeader(t *testing.T) {
	t.Run("group of one", func(t *testing.T) {
		m := newMember(t, "map-0", "127.0.0.1:0", nil, nil, testaddr.Free(t))
		m.start(t)
		testwait.Until(t, time.Minute, "map-0 answers /readyz with 200", func() bool {
			code, _ := m.readyz()
			return code == http.StatusOK
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := m.client(t).Apply(ctx, &cellarv1.MapCommand{Op: &cellarv1.MapCommand_Seed{Seed: &cellarv1.SeedMap{Slots: []string{"cell-0"}}}})
		if err != nil {
			t.Fatalf("a change right after the member said ready: %v", err)
		}
		if got.GetVersion() != 1 {
			t.Errorf("map version %d after the seed, want 1", got.GetVersion())
		}
	})
	t.Run("group of two, one away", func(t *testing.T) {
		raft0, raft1 := testaddr.Free(t), testaddr.Free(t)
		gossip0, gossip1 := testaddr.Free(t), testaddr.Free(t)
		peers := []string{"map-0=" + raft0, "map-1=" + raft1}
		m0 := newMember(t, "map-0", raft0, peers, nil, gossip0)
		m1 := newMember(t, "map-1", raft1, peers, []string{gossip0}, gossip1)
		m0.start(t)
		testwait.Until(t, time.Minute, "map-0 stands for election and finds no majority", func() bool {
			return strings.Contains(m0.logs.String(), "entering candidate state")
		})
		code, body := m0.readyz()
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for the map group to have a leader") {
			t.Fatalf("map-0 without a leader: /readyz %d %q, want 503 waiting for a leader", code, body)
		}
		m1.start(t)
		for _, m := range []*member{m0, m1} {
			testwait.Until(t, time.Minute, m.cfg.NodeID+" answers /readyz with 200 once the group has a leader", func() bool {
				code, _ := m.readyz()
				return code == http.StatusOK
			})
		}
	})
}
