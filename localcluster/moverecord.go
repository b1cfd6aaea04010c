package localcluster

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/gateway/mover"
)

// MovesFileName is the file in a cluster's data directory where the supervisor keeps
// the bucket moves its control endpoint runs: the one in progress, where its copy is,
// and the last ones that ended. The status view reads it as it reads cluster.json: a
// file on the operator's machine, not a call to a node of the cluster.
const MovesFileName = "moves.json"

// keptMoves is how many moves moves.json keeps, the newest first.
const keptMoves = 10

// MoveStatus is one bucket's move as the supervisor last saw it.
type MoveStatus struct {
	PlanID string `json:"plan_id"`
	Bucket string `json:"bucket"`
	Source string `json:"source"`
	Target string `json:"target"`
	// Phase is the mover's step (copy, catch-up, fence, final, cutover, reclaim, done,
	// undone), or "failed" or "interrupted" for a move that ended without saying so.
	Phase         string        `json:"phase"`
	Objects       int64         `json:"objects_copied"`
	Total         int64         `json:"objects_planned"`
	Bytes         int64         `json:"bytes_copied"`
	ObjectsPerSec float64       `json:"objects_per_s"`
	ETA           time.Duration `json:"eta_ns"`
	// MapVersion is the cell map's version the plan was made on.
	MapVersion uint64    `json:"map_version"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	// Ended is when the move ended (zero while it runs); WritePause how long the
	// bucket's writes were fenced, once known.
	Ended      time.Time     `json:"ended,omitzero"`
	WritePause time.Duration `json:"write_pause_ns,omitempty"`
	Error      string        `json:"error,omitempty"`
}

// Running reports whether the move had not ended when it was last recorded.
func (m MoveStatus) Running() bool { return m.Ended.IsZero() }

type movesFile struct {
	Moves []MoveStatus `json:"moves"`
}

// ReadMoves reads the moves of DIR/moves.json, the newest first; none when there is no
// such file.
func ReadMoves(dir string) ([]MoveStatus, error) {
	var f movesFile
	err := readJSON(filepath.Join(dir, MovesFileName), errNoMoves, &f)
	if errors.Is(err, errNoMoves) {
		return nil, nil
	}
	return f.Moves, err
}

var errNoMoves = errors.New("no moves recorded")

// movesMu serialises the updates of moves.json.
var movesMu sync.Mutex

// recordMove changes the move of (plan, bucket) in DIR/moves.json, adding it first
// when it is not there.
func recordMove(dir, plan, bucket string, change func(*MoveStatus)) error {
	movesMu.Lock()
	defer movesMu.Unlock()
	moves, err := ReadMoves(dir)
	if err != nil {
		moves = nil // a damaged file is replaced
	}
	i := 0
	for i < len(moves) && !(moves[i].PlanID == plan && moves[i].Bucket == bucket) {
		i++
	}
	if i == len(moves) {
		moves = append([]MoveStatus{{PlanID: plan, Bucket: bucket, Started: time.Now().UTC()}}, moves...)
		i = 0
	}
	change(&moves[i])
	moves[i].Updated = time.Now().UTC()
	if len(moves) > keptMoves {
		moves = moves[:keptMoves]
	}
	b, err := json.MarshalIndent(movesFile{Moves: moves}, "", "  ")
	if err != nil {
		return err
	}
	return writePrivate(filepath.Join(dir, MovesFileName), append(b, '\n'))
}

// recordMoves wraps the handler of POST /v1/moves: it reads the events the handler
// streams back and keeps, in DIR/moves.json, where each confirmed move is. A dry run
// streams no progress and records nothing.
func (c *controller) recordMoves(next http.HandlerFunc) http.HandlerFunc {
	if c.cfg.Dir == "" {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &moveRecorder{ResponseWriter: w, dir: c.cfg.Dir, seen: map[string]bool{}}
		next(rec, r)
		rec.ended(nil)
	}
}

// moveRecorder is the response writer of POST /v1/moves, which also records the
// events written to it: planStream writes one event per Write.
type moveRecorder struct {
	http.ResponseWriter
	dir   string
	plan  *guard.Plan
	seen  map[string]bool // buckets whose move has progressed
	last  time.Time
	phase string
}

// Unwrap lets http.ResponseController flush the writer underneath.
func (m *moveRecorder) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// progressEvery bounds how often a copy's progress rewrites moves.json; a change of
// phase is written at once.
const progressEvery = 500 * time.Millisecond

func (m *moveRecorder) Write(b []byte) (int, error) {
	n, err := m.ResponseWriter.Write(b)
	var ev PlanEvent
	if json.Unmarshal(b, &ev) != nil {
		return n, err
	}
	switch {
	case ev.Event == EventPlan && ev.Plan != nil && ev.Plan.MoveDetail != nil:
		m.plan = ev.Plan
	case ev.Event == EventProgress && ev.Move != nil && m.plan != nil:
		p := *ev.Move
		if p.Step == m.phase && time.Since(m.last) < progressEvery {
			break
		}
		m.phase, m.last = p.Step, time.Now()
		m.seen[p.Bucket] = true
		d := m.plan.MoveDetail
		_ = recordMove(m.dir, m.plan.ID, p.Bucket, func(s *MoveStatus) {
			s.Source, s.Target, s.MapVersion = d.Source, d.Target, d.MapVersion
			s.Phase, s.Objects, s.Total, s.Bytes, s.ObjectsPerSec, s.ETA = p.Step, p.Objects, p.Total, p.Bytes, p.ObjectsPerSec, p.ETA
			if p.Step == "done" || p.Step == "undone" {
				s.Ended = time.Now().UTC()
			}
		})
	case ev.Event == EventResult && ev.Result != nil:
		m.ended(ev.Result)
	}
	return n, err
}

// ended records the end of every move the request's events showed in progress: with
// the result's stats and error, or, without a result, as interrupted.
func (m *moveRecorder) ended(res *PlanResult) {
	if m.plan == nil {
		return
	}
	for bucket := range m.seen {
		_ = recordMove(m.dir, m.plan.ID, bucket, func(s *MoveStatus) {
			for _, st := range resultMoved(res) {
				if st.Bucket == bucket {
					s.WritePause, s.Objects, s.Bytes = st.WritePause, st.Objects, st.Bytes
				}
			}
			if res != nil && res.Error != "" {
				s.Error = res.Error
			}
			if !s.Ended.IsZero() {
				return // the mover said done or undone
			}
			s.Ended = time.Now().UTC()
			switch {
			case res == nil:
				s.Phase = "interrupted"
			case res.Error != "":
				s.Phase = "failed"
			}
		})
	}
	m.seen = map[string]bool{}
}

func resultMoved(res *PlanResult) []mover.Stats {
	if res == nil {
		return nil
	}
	return res.Moved
}
