package status

import (
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// StateDown is the state of a node that does not answer its /readyz: stopped, killed,
// crashed, or cut off from the status view.
const StateDown cell.State = "down"

// Health of a cell, as cell.JudgeCell decides it, and unknown when the view is stale.
const (
	HealthServing  = string(cell.HealthServing)
	HealthDegraded = string(cell.HealthDegraded)
	HealthDown     = string(cell.HealthDown)
	// HealthUnknown: the view is stale, so nothing is claimed.
	HealthUnknown = "unknown"
)

// Snapshot is one complete view of the cluster: what /api/status serves and what the
// page draws.
type Snapshot struct {
	// Generated is when the collector finished this view.
	Generated time.Time `json:"generated"`
	// StaleAfterSeconds is how long without word from the cluster makes the view stale.
	StaleAfterSeconds float64 `json:"stale_after_seconds"`
	// Stale is true when nothing has been heard from the cluster (no live gossip
	// member, no probe answered) for StaleAfterSeconds; StaleReason says what.
	Stale       bool   `json:"stale"`
	StaleReason string `json:"stale_reason,omitempty"`
	// LastContact is when the collector last heard from any node, by gossip or probe.
	LastContact time.Time `json:"last_contact,omitzero"`
	// GuardrailsOff is true when the cluster's topology turns its guardrails off
	// (teaching mode); GuardrailsOffBanner is then the line the page shows above all.
	GuardrailsOff         bool    `json:"guardrails_off"`
	GuardrailsOffBanner   string  `json:"guardrails_off_banner,omitempty"`
	LastContactAgeSeconds float64 `json:"last_contact_age_seconds"`

	Summary  Summary    `json:"summary"`
	Cells    []CellView `json:"cells"`
	Gateways []NodeView `json:"gateways"`
	// Events are the most recent first.
	Events []Event `json:"events"`
	// Moves are the bucket moves the cluster's supervisor recorded in
	// DATA_DIR/moves.json: the one in progress, and the last ones that ended, the
	// newest first.
	Moves []MoveView `json:"moves"`
	// CellMap is the cell map's version as the map group's members and the gateways
	// gossip it; nil for a cluster without a map group.
	CellMap *CellMapView `json:"cell_map,omitempty"`
	Source  Source       `json:"source"`
}

// MoveView is one bucket's move, as the supervisor that runs it last recorded it.
type MoveView struct {
	localcluster.MoveStatus
	// InProgress: the supervisor's last word is that the move runs.
	InProgress bool `json:"in_progress"`
	// SilentSeconds is, for a move in progress, how long ago the supervisor last
	// recorded it; past MoveSilentAfter the view says it has heard nothing.
	SilentSeconds float64 `json:"silent_seconds,omitempty"`
	Silent        bool    `json:"silent,omitempty"`
}

// CellMapView is where the cell map is: its newest version in the map group, and the
// version each member and each gateway has (a gateway on an older one routes by it
// until the new one reaches it).
type CellMapView struct {
	Version  uint64      `json:"version"`
	Members  []MapHolder `json:"members"`
	Gateways []MapHolder `json:"gateways"`
	// Behind lists the gateways on an older version than Version.
	Behind []string `json:"behind,omitempty"`
}

// MapHolder is a node that holds a cell map: a map group member or a gateway.
type MapHolder struct {
	ID      string     `json:"id"`
	State   cell.State `json:"state"`
	Version uint64     `json:"version"`
	Leader  bool       `json:"leader,omitempty"`
}

// Summary counts the cluster at a glance.
type Summary struct {
	Cells        int `json:"cells"`
	CellsServing int `json:"cells_serving"`
	CellsDown    int `json:"cells_down"`
	Nodes        int `json:"nodes"`
	NodesReady   int `json:"nodes_ready"`
	NodesDown    int `json:"nodes_down"`
}

// Source says where the view comes from.
type Source struct {
	// Observer is the status view's own gossip address.
	Observer string `json:"observer,omitempty"`
	// GossipMembers is how many other members the observer's gossip lists as alive.
	GossipMembers int    `json:"gossip_members"`
	ClusterFile   string `json:"cluster_file,omitempty"`
	AuditLog      string `json:"audit_log,omitempty"`
	// MovesFile is where the supervisor records the bucket moves it runs.
	MovesFile string `json:"moves_file,omitempty"`
	// Topology says where the declared shape the cells are judged against comes
	// from: "cluster.json", "topology file", or "gossip" (group sizes and nodes seen).
	Topology string `json:"topology"`
	// DownAfterMissedProbes is how many probes in a row a node the gossip still lists
	// must miss to be shown down.
	DownAfterMissedProbes int `json:"down_after_missed_probes"`
}

// CellView is one cell: its tiers, its index group, what it can serve and its traffic.
type CellView struct {
	ID     string `json:"id"`
	Health string `json:"health"`
	// Reason says in a few words why the cell is not serving ("index has no quorum").
	Reason string     `json:"reason,omitempty"`
	Tiers  []TierView `json:"tiers"`
	Index  IndexGroup `json:"index"`
	// Operations says which S3 operations the cell can serve now.
	Operations []Operation `json:"operations"`
	// Traffic is nil when no gateway's metrics could be read.
	Traffic *Traffic `json:"traffic"`
}

// TierView is the nodes of one role in a cell.
type TierView struct {
	Role  cell.Role  `json:"role"`
	Ready int        `json:"ready"`
	Total int        `json:"total"`
	Nodes []NodeView `json:"nodes"`
}

// IndexGroup is a cell's index replication group: it has quorum while a majority of
// the nodes the group is declared with is ready and, for a group of more than one,
// one of them leads (cell.Quorum).
type IndexGroup struct {
	Ready int `json:"ready"`
	// Total is the group's declared size, seen or not.
	Total  int  `json:"total"`
	Need   int  `json:"need"`
	Quorum bool `json:"quorum"`
	// Leader is the id of the node that says it leads the group, if any does.
	Leader string `json:"leader,omitempty"`
}

// Operation is one S3 operation, whether the cell can serve it, and the tiers that
// are missing when it cannot.
type Operation = cell.OperationHealth

// Traffic is a cell's S3 traffic as the gateways count it, over the last Window.
type Traffic struct {
	WindowSeconds     float64 `json:"window_seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	// ErrorsPerSecond counts responses that are the service's fault (5xx:
	// ServiceUnavailable, SlowDown, InternalError), not the client's (404, 403...).
	ErrorsPerSecond float64 `json:"errors_per_second"`
	// ErrorRatio is ErrorsPerSecond / RequestsPerSecond (0 with no requests).
	ErrorRatio float64 `json:"error_ratio"`
	// P99Seconds is the 99th percentile request duration; nil with no requests.
	P99Seconds *float64 `json:"p99_seconds"`
	// History is the last minutes of this cell's traffic, oldest first, one point per
	// collection.
	History []TrafficPoint `json:"history,omitempty"`
}

// TrafficPoint is a cell's request and error rate at one time.
type TrafficPoint struct {
	Time              time.Time `json:"t"`
	RequestsPerSecond float64   `json:"rps"`
	ErrorsPerSecond   float64   `json:"eps"`
}

// NodeView is one node: its state as probed, what gossip says of it, and its last start.
type NodeView struct {
	ID   string    `json:"id"`
	Role cell.Role `json:"role"`
	Cell string    `json:"cell,omitempty"`
	// State is the node's state as its /readyz answers it, or down when it has not
	// answered three probes in a row or has left the gossip and does not answer;
	// before the first answer, what the gossip says.
	State cell.State `json:"state"`
	// FailedProbes counts the probes in a row the node has not answered.
	FailedProbes int `json:"failed_probes,omitempty"`
	// NeverSeen: the declared shape has this node, but the view has never seen it
	// (not in the gossip, not in cluster.json); it is shown down.
	NeverSeen bool `json:"never_seen,omitempty"`
	// Progress of a rebuild, in [0,1], while State is rebuilding.
	Progress float64 `json:"progress,omitempty"`
	// Since is when the status view first saw the node in State.
	Since time.Time `json:"since,omitzero"`
	// Probe is "ok", "not ready" or why the probe failed.
	Probe string `json:"probe"`
	// InGossip is whether the gossip lists the node as alive; GossipState is the state
	// it gossips.
	InGossip    bool       `json:"in_gossip"`
	GossipState cell.State `json:"gossip_state,omitempty"`
	Leader      bool       `json:"leader,omitempty"`
	// AppliedIndex is the last replication log entry an index node has applied.
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	PID          int    `json:"pid,omitempty"`
	AdminAddr    string `json:"admin_addr,omitempty"`
	GRPCAddr     string `json:"grpc_addr,omitempty"`
	// Started is when the node's current (or last) process started; Ready when it
	// became ready; ReadySeconds the time between them: the restart time.
	Started      time.Time `json:"started,omitzero"`
	Ready        time.Time `json:"ready,omitzero"`
	ReadySeconds *float64  `json:"ready_seconds"`
	// Gauges are the node's own numbers from /status (an index node's objects...).
	Gauges map[string]float64 `json:"gauges,omitempty"`
	// Process is what cellctl up's supervisor says of the process, when it runs it.
	Process string `json:"process,omitempty"`
	// Note explains a state that follows from another tier's ("waits for its cell's
	// index").
	Note string `json:"note,omitempty"`
}

// Event kinds.
const (
	EventNode  = "node"  // a node changed state
	EventCell  = "cell"  // a cell changed health
	EventView  = "view"  // the status view itself (started, stale, fresh again)
	EventAudit = "audit" // a line of DATA_DIR/audit.log (drills, guardrails)
)

// Event is something the status view saw happen, or read from the audit log.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Cell    string    `json:"cell,omitempty"`
	Node    string    `json:"node,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Message string    `json:"message"`
}
