// Package linearkv is the model that cellar's fault tests check their histories
// against: a key-value store where every key is a register, "" meaning the key does not
// exist. A test records each GET, PUT and DELETE its clients ran in a History, then asks
// Check whether some order of them, consistent with real time, explains every result
// (linearizability, decided by porcupine, one key at a time).
//
// A write whose outcome the client never learnt (a timeout, a 5xx, a connection cut)
// is recorded with Unknown: it may take effect at any moment after its call, or never.
// Each such write multiplies porcupine's search, so tests spread their operations over
// many keys; Check also drops, before the search, every unknown PUT whose value no
// operation ever saw, since such a PUT explains nothing and leaves no trace. For that,
// the values PUT must be unique in a history.
//
// A write may also report the value it replaced (the index's Commit and Delete do):
// Output.Previous then makes the model check it too.
//
// The package is for tests only; no daemon links it (cmd/deps_test.go checks).
package linearkv

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op is the kind of an operation.
type Op uint8

// The operations of the model.
const (
	Get Op = iota
	Put
	Delete
)

func (o Op) String() string {
	switch o {
	case Get:
		return "get"
	case Put:
		return "put"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Input is what a client asked: Value is the value a Put writes.
type Input struct {
	Op    Op
	Key   string
	Value string
}

// Output is what a client saw. For a Get, Value is the value read ("" for a key that
// does not exist). For a write, Value is the value it replaced when Previous is set,
// and unchecked otherwise. Unknown marks a write whose outcome the client never learnt.
type Output struct {
	Value    string
	Previous bool
	Unknown  bool
}

// Never is the return time of a write of unknown outcome: it may take effect at any
// time after its call.
const Never int64 = math.MaxInt64

// Model is the porcupine model: one register per key, partitioned by key.
var Model = porcupine.Model{
	Partition: partition,
	Init:      func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(Input), output.(Output)
		switch in.Op {
		case Get:
			return out.Value == st, st
		case Put:
			return !out.Previous || out.Unknown || out.Value == st, in.Value
		default:
			return !out.Previous || out.Unknown || out.Value == st, ""
		}
	},
	Hash: func(state any) uint64 {
		var h uint64 = 14695981039346656037 // FNV-1a
		for _, c := range []byte(state.(string)) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		return h
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		res := "ok"
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == Get || out.Previous:
			res = fmt.Sprintf("%q", out.Value)
		}
		switch in.Op {
		case Get:
			return fmt.Sprintf("get(%s) → %s", in.Key, res)
		case Put:
			return fmt.Sprintf("put(%s, %s) → %s", in.Key, in.Value, res)
		}
		return fmt.Sprintf("delete(%s) → %s", in.Key, res)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

func partition(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var order []string
	for _, op := range history {
		k := op.Input.(Input).Key
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, k := range order {
		out = append(out, byKey[k])
	}
	return out
}

// Prune returns ops without the unknown PUTs whose value no operation saw (as read, or
// as a write's previous value). Such a PUT, if it took effect, was overwritten or
// deleted before anyone looked: a history with it is linearizable exactly when the
// history without it is, so dropping it changes no verdict and shortens the search.
func Prune(ops []porcupine.Operation) []porcupine.Operation {
	seen := map[[2]string]bool{}
	for _, op := range ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if !out.Unknown && (in.Op == Get || out.Previous) && out.Value != "" {
			seen[[2]string{in.Key, out.Value}] = true
		}
	}
	return slices.DeleteFunc(slices.Clone(ops), func(op porcupine.Operation) bool {
		in, out := op.Input.(Input), op.Output.(Output)
		return in.Op == Put && out.Unknown && !seen[[2]string{in.Key, in.Value}]
	})
}

// Check decides whether ops are linearizable within timeout: porcupine.Ok, Illegal, or
// Unknown when the search did not finish in time (which is no verdict, and a test
// treats it as a failure to look into).
func Check(ops []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model, Prune(ops), timeout)
}

// Save writes, into dir (a new temporary directory if empty), the visualization of ops
// (name.html, open it in a browser) and ops as JSON (name.json), and returns a line
// that says where they are.
func Save(dir, name string, ops []porcupine.Operation, timeout time.Duration) string {
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "cellar-linearkv-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		return fmt.Sprintf("no visualization: %v", err)
	}
	_, info := porcupine.CheckOperationsVerbose(Model, Prune(ops), timeout)
	viz := filepath.Join(dir, name+".html")
	if err := porcupine.VisualizePath(Model, info, viz); err != nil {
		return fmt.Sprintf("no visualization: %v", err)
	}
	hist := filepath.Join(dir, name+".json")
	if err := writeJSON(hist, ops); err != nil {
		return fmt.Sprintf("visualization %s (no history: %v)", viz, err)
	}
	return fmt.Sprintf("visualization %s, history %s", viz, hist)
}

// History is the operations a test's clients saw, with times in nanoseconds since it
// was made (monotonic). It is safe for concurrent use.
type History struct {
	t0  time.Time
	mu  sync.Mutex
	all []porcupine.Operation
}

// NewHistory returns an empty history whose clock starts now.
func NewHistory() *History { return &History{t0: time.Now()} }

// Now is the history's clock: take it just before a call and just after it returns.
func (h *History) Now() int64 { return time.Since(h.t0).Nanoseconds() }

// Add records an operation whose result the client saw.
func (h *History) Add(client int, in Input, out Output, call, ret int64) {
	h.mu.Lock()
	h.all = append(h.all, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// AddUnknown records a write whose outcome the client never learnt.
func (h *History) AddUnknown(client int, in Input, call int64) {
	h.Add(client, in, Output{Unknown: true}, call, Never)
}

// Ops returns a copy of the operations recorded so far.
func (h *History) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.all)
}

// Stats counts a history's operations.
type Stats struct {
	Reads, Acked, Unknown int
	// Keys is how many keys were touched; MaxUnknownPerKey the most writes of unknown
	// outcome on one key after Prune (what makes porcupine's search long).
	Keys, MaxUnknownPerKey int
}

// Count counts ops.
func Count(ops []porcupine.Operation) Stats {
	var s Stats
	for _, op := range ops {
		switch {
		case op.Input.(Input).Op == Get:
			s.Reads++
		case op.Output.(Output).Unknown:
			s.Unknown++
		default:
			s.Acked++
		}
	}
	for _, part := range partition(Prune(ops)) {
		s.Keys++
		n := 0
		for _, op := range part {
			if op.Output.(Output).Unknown {
				n++
			}
		}
		s.MaxUnknownPerKey = max(s.MaxUnknownPerKey, n)
	}
	return s
}

func (s Stats) String() string {
	return fmt.Sprintf("%d operations on %d keys: %d reads, %d acknowledged writes, %d writes of unknown outcome (at most %d on one key once unseen ones are dropped)",
		s.Reads+s.Acked+s.Unknown, s.Keys, s.Reads, s.Acked, s.Unknown, s.MaxUnknownPerKey)
}

// LostWrites spells out the durability part of what the model checks: an acknowledged
// write whose effect is not in final (the value of every key at the end, "" for none)
// although no other write of its key (of any outcome) may have come after it.
func LostWrites(ops []porcupine.Operation, final map[string]string) []string {
	var lost []string
	for i, w := range ops {
		in, out := w.Input.(Input), w.Output.(Output)
		if in.Op == Get || out.Unknown {
			continue
		}
		want := in.Value // "" for a delete
		if final[in.Key] == want {
			continue
		}
		superseded := false
		for j, o := range ops {
			oi := o.Input.(Input)
			if j != i && oi.Key == in.Key && oi.Op != Get && o.Return > w.Call {
				superseded = true
				break
			}
		}
		if !superseded {
			lost = append(lost, fmt.Sprintf("%s(%s, %q) acknowledged at %v, final %q", in.Op, in.Key, in.Value, time.Duration(w.Return), final[in.Key]))
		}
	}
	return lost
}

func writeJSON(path string, ops []porcupine.Operation) error {
	b, err := json.MarshalIndent(ops, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
