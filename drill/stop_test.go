package drill

import (
	"strings"
	"testing"
	"time"

	"github.com/cellarsim/cellar/loadgen"
)

// totals turns per-second outcomes of one cell into the running totals the load
// reports once a second.
func totals(seconds []struct{ requests, errors int64 }) []snapshot {
	var snaps []snapshot
	var cur loadgen.Summary
	for i, s := range seconds {
		cur.Requests += s.requests
		cur.Errors += s.errors
		snaps = append(snaps, snapshot{at: time.Duration(i+1) * time.Second, cells: map[string]loadgen.Summary{"cell-0": cur}})
	}
	return snaps
}

// seconds is n seconds of rate requests each, of which fail(i) failed in second i.
func seconds(n int, rate int64, fail func(i int) int64) []struct{ requests, errors int64 } {
	out := make([]struct{ requests, errors int64 }, n)
	for i := range out {
		out[i].requests, out[i].errors = rate, min(fail(i), rate)
	}
	return out
}

// firstAbort feeds the totals to the stop rule one second at a time and returns the
// second at which it stops the drill (0: never), and why.
func firstAbort(st Stop, snaps []snapshot) (int, string) {
	st.EnsureDefaults()
	above := aboveSince{}
	for i := range snaps {
		if why := above.check(st, snaps[:i+1], 0, "cell-0"); why != "" {
			return i + 1, why
		}
	}
	return 0, ""
}

func TestStopRule(t *testing.T) {
	between := func(from, to int, n int64) func(int) int64 {
		return func(i int) int64 {
			if i >= from && i < to {
				return n
			}
			return 0
		}
	}
	for _, tc := range []struct {
		name     string
		stop     Stop
		seconds  []struct{ requests, errors int64 }
		abortsAt int // 0: it never aborts
	}{
		// A leader election in a cell the drill does not touch: every request fails
		// for a few seconds, then the cell serves again.
		{"a 4s leader election", Stop{}, seconds(120, 25, between(30, 34, 25)), 0},
		{"a 9s leader election", Stop{}, seconds(120, 25, between(30, 39, 25)), 0},
		{"a stray error now and then", Stop{}, seconds(120, 25, func(i int) int64 { return int64(i % 7 / 6) }), 0},
		// The drill's damage leaks into the cell and stays: the drill stops 15s after
		// the first total above the limit (second 30 is reported at 31).
		{"every request failing from 30s", Stop{}, seconds(120, 25, between(30, 120, 25)), 46},
		{"a fifth of the requests failing from 30s", Stop{}, seconds(120, 25, between(30, 120, 5)), 47},
		{"a cell that keeps losing its leader", Stop{}, seconds(120, 25, func(i int) int64 { return 25 * int64(i%6/4) }), 20},
		{"a shorter hold", Stop{For: Duration(5 * time.Second)}, seconds(120, 25, between(30, 120, 25)), 36},
		// At 2 requests a second, the window reaches back until it holds 20 requests:
		// the rule still judges the cell.
		{"a leak at a low rate", Stop{}, seconds(120, 2, between(30, 120, 1)), 47},
		{"a 4s election at a low rate", Stop{}, seconds(120, 2, between(30, 34, 2)), 0},
		// Fewer requests than a window needs: not judged.
		{"too few requests to judge", Stop{}, seconds(8, 2, between(0, 8, 2)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, why := firstAbort(tc.stop, totals(tc.seconds))
			if at != tc.abortsAt {
				t.Errorf("aborts at second %d (%q), want %d", at, why, tc.abortsAt)
			}
			if at > 0 && !strings.Contains(why, "cell-0, not acted on") {
				t.Errorf("reason %q", why)
			}
		})
	}
}

// The ERRORS event of a second names the codes of that second, not the totals so far.
func TestErrorsEventShowsTheCodesOfItsSecond(t *testing.T) {
	sc := &Scenario{Name: "codes"}
	sc.Stop.EnsureDefaults()
	r := &runner{sc: sc, start: time.Now(), rep: &Report{}, failing: map[string]bool{}, above: aboveSince{}, cancel: func() {}}
	r.observe(loadgen.Summary{}, map[string]loadgen.Summary{"cell-1": {Requests: 900, Errors: 825, ErrorCodes: map[string]int64{"ServiceUnavailable": 825}}})
	r.observe(loadgen.Summary{}, map[string]loadgen.Summary{"cell-1": {Requests: 910, Errors: 825, ErrorCodes: map[string]int64{"ServiceUnavailable": 825}}})
	r.observe(loadgen.Summary{}, map[string]loadgen.Summary{"cell-1": {Requests: 920, Errors: 835, ErrorCodes: map[string]int64{"ServiceUnavailable": 833, "Timeout": 2}}})
	var got []string
	for _, e := range r.rep.Timeline {
		got = append(got, e.Kind+": "+e.Text)
	}
	want := []string{
		"ERRORS: cell-1: 825 of 900 requests failed in the last second (ServiceUnavailable=825)",
		"RECOVERED: cell-1: every request of the last second succeeded",
		"ERRORS: cell-1: 10 of 10 requests failed in the last second (ServiceUnavailable=8 Timeout=2)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOverride(t *testing.T) {
	load := func() *Scenario {
		sc, err := ParseScenario([]byte("name: x\nsteps:\n  - load: {rate: 100, duration: 5m}\n  - wait: 1s\n"))
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	rate := func(r float64) *float64 { return &r }
	dur := func(d time.Duration) *time.Duration { return &d }

	sc := load()
	if err := sc.Override(Overrides{Rate: rate(20), Duration: dur(90 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if l := sc.Steps[0].Load; l.Rate != 20 || time.Duration(l.Duration) != 90*time.Second {
		t.Errorf("load step %+v", l)
	}
	want := LoadOverride{Rate: 20, ScenarioRate: 100, Duration: 90 * time.Second, ScenarioDuration: 5 * time.Minute}
	if sc.overridden == nil || *sc.overridden != want {
		t.Errorf("recorded %+v, want %+v", sc.overridden, want)
	}
	sc = load()
	if err := sc.Override(Overrides{Rate: rate(20)}); err != nil || time.Duration(sc.Steps[0].Load.Duration) != 5*time.Minute || sc.overridden.Duration != 0 {
		t.Errorf("rate alone: %v, %+v", err, sc.overridden)
	}
	sc = load()
	if err := sc.Override(Overrides{}); err != nil || sc.overridden != nil || sc.Steps[0].Load.Rate != 100 {
		t.Errorf("no override: %v, %+v", err, sc.overridden)
	}

	noLoad, err := ParseScenario([]byte("name: x\nsteps:\n  - wait: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sc   *Scenario
		o    Overrides
		want string
	}{
		{load(), Overrides{Rate: rate(0)}, "rate must be above 0 and at most 5000 requests per second, not 0"},
		{load(), Overrides{Rate: rate(-1)}, "rate must be above 0"},
		{load(), Overrides{Rate: rate(loadgen.MaxRate + 1)}, "rate must be above 0 and at most 5000 requests per second, not 5001"},
		{load(), Overrides{Duration: dur(0)}, "duration must be above 0 and at most 1h0m0s, not 0s"},
		{load(), Overrides{Duration: dur(2 * time.Hour)}, "duration must be above 0 and at most 1h0m0s, not 2h0m0s"},
		{load(), Overrides{Rate: rate(0.5), Duration: dur(time.Second)}, "rate must give the load at least one request"},
		{noLoad, Overrides{Rate: rate(10)}, "rate: scenario x has no load step"},
		{noLoad, Overrides{Duration: dur(time.Minute)}, "duration: scenario x has no load step"},
	} {
		err := tc.sc.Override(tc.o)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
		if tc.sc.overridden != nil {
			t.Errorf("%+v: the refused override was recorded", tc.o)
		}
	}
}
