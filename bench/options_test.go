package bench

import (
	"strings"
	"testing"
)

func TestRebuildOptionsDefaultsAreValid(t *testing.T) {
	var o RebuildOptions
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	if o.Runs != 3 || o.Pending != "pebble" || len(o.Objects) == 0 || len(o.Cells) == 0 || o.Timeout <= 0 || o.Progress == nil {
		t.Fatalf("defaults left unset: %+v", o)
	}
}

func TestRebuildOptionsValidate(t *testing.T) {
	valid := func() RebuildOptions {
		return RebuildOptions{Objects: []int{10}, Cells: []int{1, 256}, Pending: "slowdown", Runs: 100}
	}
	for _, tc := range []struct {
		name   string
		change func(*RebuildOptions)
		want   string // the start of the error; "" for none
	}{
		{"valid", func(o *RebuildOptions) {}, ""},
		{"no runs", func(o *RebuildOptions) { o.Runs = 0 }, "runs: 0 is not between 1 and 100"},
		{"too many runs", func(o *RebuildOptions) { o.Runs = 101 }, "runs: 101"},
		{"unknown pending", func(o *RebuildOptions) { o.Pending = "wait" }, `pending "wait": want pebble or slowdown`},
		{"no objects", func(o *RebuildOptions) { o.Objects = []int{10, 0} }, "objects: 0 is not a positive count"},
		{"no cells", func(o *RebuildOptions) { o.Cells = []int{0} }, "cells: 0 is not between 1 and 256"},
		{"too many cells", func(o *RebuildOptions) { o.Cells = []int{257} }, "cells: 257"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.change(&o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want %q...", err, tc.want)
			}
		})
	}
}

func TestCatchUpOptionsValidate(t *testing.T) {
	var o CatchUpOptions
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	for _, tc := range []struct {
		writes []int
		want   string
	}{
		{[]int{1, 10_000_000}, ""},
		{[]int{}, "writes needs at least one count"},
		{[]int{0}, "writes 0: want 1 to 10000000"},
		{[]int{10_000_001}, "writes 10000001: want 1 to 10000000"},
	} {
		o := CatchUpOptions{Writes: tc.writes}
		err := o.Validate()
		if (tc.want == "" && err != nil) || (tc.want != "" && (err == nil || err.Error() != tc.want)) {
			t.Errorf("Validate of writes %v: %v, want %q", tc.writes, err, tc.want)
		}
	}
}

func TestRunRebuildRefusesInvalidOptions(t *testing.T) {
	_, err := RunRebuild(t.Context(), RebuildOptions{Dir: t.TempDir(), Cells: []int{300}})
	if err == nil || !strings.Contains(err.Error(), "cells: 300") {
		t.Fatalf("RunRebuild with 300 cells: %v, want the cells refused", err)
	}
}
