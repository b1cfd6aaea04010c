package index

import (
	"log/slog"
	"os"
	"sync/atomic"

	cellarv1 "github.com/cellarsim/cellar/api/proto/cellar/v1"
	"github.com/cellarsim/cellar/internal/errs"
	"github.com/cellarsim/cellar/internal/faultfile"
)

// PillExitCode is how an index node that applied the armed index pill exits.
const PillExitCode = 87

// pill is the index pill of a node whose cluster allows faults (Config.FaultsFile): a
// write of the object the drill tooling named crashes the node that applies it, as a
// deterministic bug in the apply path would. Every replica of the cell's group applies
// the same log entry, so every one of them crashes, and crashes again when it replays
// the entry after a restart, until the pill is disarmed.
type pill struct {
	watch   *faultfile.Watch
	crash   func(code int)
	log     *slog.Logger
	crashed atomic.Bool // the pill fired: this node is a crashed process and applies nothing more
}

// armFaults makes the store watch the faults file at path; crash ends the node (nil:
// the process exits).
func (s *Store) armFaults(path string, crash func(code int)) {
	if path == "" {
		return
	}
	if crash == nil {
		crash = os.Exit
	}
	s.pill = &pill{watch: faultfile.NewWatch(path), crash: crash, log: s.log}
	s.log.Warn("faults may be armed in this cluster by the drill tooling: an armed index pill crashes this node", "faults_file", path)
}

// hasCrashed reports whether the pill fired on this node: a crashed process answers
// nothing, reads included, for the moment it takes a node in one process to end.
func (p *pill) hasCrashed() bool { return p != nil && p.crashed.Load() }

// errCrashed is what a node that swallowed the pill answers until it has ended.
var errCrashed = errs.New(errs.Unavailable, "this index node crashed")

// swallows reports whether cmd writes the object of the armed pill, and if so crashes
// the node.
func (p *pill) swallows(cmd *cellarv1.IndexCommand) bool {
	if p == nil {
		return false
	}
	if p.crashed.Load() {
		return true
	}
	var bucket, key string
	switch op := cmd.GetOp().(type) {
	case *cellarv1.IndexCommand_Commit:
		bucket, key = op.Commit.GetLocation().GetBucket(), op.Commit.GetLocation().GetKey()
	case *cellarv1.IndexCommand_CompleteUpload:
		bucket, key = op.CompleteUpload.Bucket, op.CompleteUpload.Key
	default:
		return false
	}
	f, _, err := p.watch.Load()
	if err != nil {
		p.log.Warn("faults file unreadable; keeping what was armed", "err", err)
	}
	if !f.Index.Matches(bucket, key) {
		return false
	}
	p.crashed.Store(true)
	p.log.Error("INDEX PILL: crashing on applying a write of the armed object, as a deterministic bug would; every replica applies it",
		"bucket", bucket, "key", key)
	p.crash(PillExitCode)
	return true
}
