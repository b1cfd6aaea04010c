package linearkv

import (
	"fmt"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func op(client int, o Op, key, value, out string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: Input{Op: o, Key: key, Value: value},
		Output: Output{Value: out}, Call: call, Return: ret}
}

// withPrevious is op for a write that reports the value it replaced.
func withPrevious(client int, o Op, key, value, prev string, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: Input{Op: o, Key: key, Value: value},
		Output: Output{Value: prev, Previous: true}, Call: call, Return: ret}
}

func unknown(o Op, key, value string, call int64) porcupine.Operation {
	return porcupine.Operation{ClientId: 2, Input: Input{Op: o, Key: key, Value: value},
		Output: Output{Unknown: true}, Call: call, Return: Never}
}

// The model must refuse a stale read and a lost acknowledged write, and accept a write
// of unknown outcome either way.
func TestModel(t *testing.T) {
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"sequential", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), op(1, Get, "a", "", "1", 20, 30),
			op(0, Delete, "a", "", "", 40, 50), op(1, Get, "a", "", "", 60, 70),
		}, porcupine.Ok},
		{"concurrent read sees either", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), op(0, Put, "a", "2", "", 20, 40), op(1, Get, "a", "", "1", 25, 30),
		}, porcupine.Ok},
		{"stale read", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), op(0, Put, "a", "2", "", 20, 30), op(1, Get, "a", "", "1", 40, 50),
		}, porcupine.Illegal},
		{"lost write", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), op(1, Get, "a", "", "", 20, 30),
		}, porcupine.Illegal},
		{"lost delete", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), op(0, Delete, "a", "", "", 20, 30), op(1, Get, "a", "", "1", 40, 50),
		}, porcupine.Illegal},
		{"previous checked", []porcupine.Operation{
			withPrevious(0, Put, "a", "1", "", 0, 10), withPrevious(0, Put, "a", "2", "1", 20, 30),
			withPrevious(0, Delete, "a", "", "2", 40, 50),
		}, porcupine.Ok},
		{"wrong previous", []porcupine.Operation{
			withPrevious(0, Put, "a", "1", "", 0, 10), withPrevious(0, Put, "a", "2", "", 20, 30),
		}, porcupine.Illegal},
		{"keys are independent", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), op(1, Get, "b", "", "", 20, 30),
		}, porcupine.Ok},
		{"unknown write seen", []porcupine.Operation{
			unknown(Put, "a", "1", 0), op(1, Get, "a", "", "1", 20, 30),
		}, porcupine.Ok},
		{"unknown write never seen", []porcupine.Operation{
			unknown(Put, "a", "1", 0), op(1, Get, "a", "", "", 20, 30),
		}, porcupine.Ok},
		{"unknown write seen, then not", []porcupine.Operation{
			unknown(Put, "a", "1", 0), op(1, Get, "a", "", "1", 20, 30), op(1, Get, "a", "", "", 40, 50),
		}, porcupine.Illegal},
		{"read before the unknown write's call", []porcupine.Operation{
			op(1, Get, "a", "", "1", 0, 10), unknown(Put, "a", "1", 20),
		}, porcupine.Illegal},
		{"unknown delete explains a missing key", []porcupine.Operation{
			op(0, Put, "a", "1", "", 0, 10), unknown(Delete, "a", "", 20), op(1, Get, "a", "", "", 40, 50),
		}, porcupine.Ok},
		{"read of a value nobody wrote", []porcupine.Operation{
			op(1, Get, "a", "", "x", 0, 10),
		}, porcupine.Illegal},
	}
	for _, c := range cases {
		if got := Check(c.ops, 5*time.Second); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		// Prune changes no verdict.
		if got := porcupine.CheckOperationsTimeout(Model, c.ops, 5*time.Second); got != c.want {
			t.Errorf("%s, unpruned: %v, want %v", c.name, got, c.want)
		}
	}
}

// Prune drops exactly the unknown PUTs nobody saw, and with them the search that made
// a history of many such writes on one key run out of time.
func TestPrune(t *testing.T) {
	ops := []porcupine.Operation{
		unknown(Put, "a", "seen", 0), unknown(Put, "a", "unseen", 0), unknown(Delete, "a", "", 0),
		op(1, Get, "a", "", "seen", 10, 20), unknown(Put, "b", "seen", 0),
	}
	got := Prune(ops)
	if len(got) != 3 {
		t.Fatalf("Prune kept %d operations, want 3: %v", len(got), got)
	}
	for _, o := range got {
		if in := o.Input.(Input); in.Op == Put && (in.Value == "unseen" || in.Key == "b") {
			t.Errorf("Prune kept an unseen write: %v", in) // a value is seen per key
		}
	}
	if len(ops) != 5 {
		t.Errorf("Prune changed its argument")
	}

	// 60 unknown writes on one key, none seen, around acknowledged ones: the search
	// without Prune would try the unknown writes in every order and subset.
	var many []porcupine.Operation
	for i := range 60 {
		many = append(many, unknown(Put, "k", fmt.Sprintf("u%d", i), int64(i*10)))
		v := fmt.Sprintf("a%d", i)
		many = append(many, op(0, Put, "k", v, "", int64(i*10), int64(i*10+5)), op(1, Get, "k", "", v, int64(i*10+6), int64(i*10+8)))
	}
	if res := Check(many, 10*time.Second); res != porcupine.Ok {
		t.Errorf("60 unseen unknown writes: %v, want Ok", res)
	}
	if s := Count(many); s.MaxUnknownPerKey != 0 || s.Unknown != 60 || s.Acked != 60 || s.Reads != 60 || s.Keys != 1 {
		t.Errorf("Count: %+v", s)
	}
}

func TestLostWrites(t *testing.T) {
	lost := LostWrites([]porcupine.Operation{op(0, Put, "a", "1", "", 0, 10), op(1, Delete, "a", "", "", 20, 30)},
		map[string]string{"a": "1"})
	if len(lost) != 1 {
		t.Errorf("LostWrites missed a lost delete: %v", lost)
	}
	if lost := LostWrites([]porcupine.Operation{op(0, Put, "a", "1", "", 0, 10), unknown(Put, "a", "2", 5)},
		map[string]string{"a": "2"}); len(lost) != 0 {
		t.Errorf("LostWrites: %v, but a later write may have replaced it", lost)
	}
}

func TestHistory(t *testing.T) {
	h := NewHistory()
	call := h.Now()
	h.Add(0, Input{Op: Put, Key: "a", Value: "1"}, Output{}, call, h.Now())
	h.AddUnknown(1, Input{Op: Delete, Key: "a"}, h.Now())
	ops := h.Ops()
	if len(ops) != 2 || ops[1].Return != Never || !ops[1].Output.(Output).Unknown {
		t.Fatalf("history: %+v", ops)
	}
	if s := Save(t.TempDir(), "h", ops, time.Second); s == "" {
		t.Error("Save said nothing")
	}
}
