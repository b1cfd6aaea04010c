package drill

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill/guard"
	"github.com/cellarsim/cellar/loadgen"
)

// Scenario is a drill: timed steps run against a running cluster, and the conditions
// that stop it early.
//
//	name: smoke
//	target: last          # the cell under test: a cell id, "first" or "last" (default)
//	stop:                 # see Stop; these are the defaults
//	  others_error_rate_above: 0.05
//	  window: 5s
//	  min_requests: 20
//	  for: 15s
//	steps:
//	  - load: {rate: 100, duration: 60s}
//	  - drain: {tier: index, count: 2, expect: refused}
//	  - at: 20s
//	    restart: {tier: [index]}
//	  - assert: {cell: others, error_rate_below: 0.01}
//
// A step whose cell is empty acts on the target. "others" in an assertion is every
// cell but the ones the drill acts on.
type Scenario struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description" json:"description,omitempty"`
	Target      string `yaml:"target" json:"target,omitempty"`
	Stop        Stop   `yaml:"stop" json:"stop"`
	Steps       []Step `yaml:"steps" json:"steps"`

	overridden *LoadOverride // what Override changed
}

// Stop holds the conditions that abort a drill while it runs.
//
// A drill stops when a cell it does not act on keeps failing: when that cell's error
// rate over a sliding window (the last Window, stretched back until it holds
// MinRequests requests) stays above OthersErrorRateAbove for For in a row. A real
// leak of the drill's damage into another cell lasts and aborts the drill; a leader
// election that costs an untouched cell a few seconds of errors does not (it still
// shows in the report's blast radius and in the scenario's assertions).
type Stop struct {
	// OthersErrorRateAbove is the share of failed requests above which a cell is
	// failing (default 0.05).
	OthersErrorRateAbove float64 `yaml:"others_error_rate_above" json:"others_error_rate_above"`
	// Window is how far back the error rate is measured (default 5s).
	Window Duration `yaml:"window" json:"window"`
	// MinRequests is the fewest requests a window holds before it is judged; a
	// window that holds fewer reaches further back (default 20).
	MinRequests int64 `yaml:"min_requests" json:"min_requests"`
	// For is how long the error rate stays above the limit before the drill aborts
	// (default 15s).
	For Duration `yaml:"for" json:"for"`
}

// EnsureDefaults fills in the zero fields.
func (s *Stop) EnsureDefaults() {
	if s.OthersErrorRateAbove <= 0 {
		s.OthersErrorRateAbove = 0.05
	}
	if s.Window <= 0 {
		s.Window = Duration(5 * time.Second)
	}
	if s.MinRequests <= 0 {
		s.MinRequests = 20
	}
	if s.For <= 0 {
		s.For = Duration(15 * time.Second)
	}
}

// Rule says the stop condition in words, for the report.
func (s Stop) Rule() string {
	return fmt.Sprintf("the drill aborts when a cell it does not act on fails more than %s of its requests "+
		"over the last %s (stretched back until it holds %d requests) for %s in a row; "+
		"a leader election that costs such a cell a few seconds of errors does not abort it",
		pctf(s.OthersErrorRateAbove), time.Duration(s.Window), s.MinRequests, time.Duration(s.For))
}

// Duration is a time.Duration written as "5s" in a scenario.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 5s or 1m30s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Step is one step: exactly one of its actions, run at At (since the drill began)
// when given, else right after the step before.
type Step struct {
	At      *Duration    `yaml:"at" json:"at,omitempty"`
	Load    *LoadStep    `yaml:"load" json:"load,omitempty"`
	Wait    *Duration    `yaml:"wait" json:"wait,omitempty"`
	Drain   *DrainStep   `yaml:"drain" json:"drain,omitempty"`
	Undrain *UndrainStep `yaml:"undrain" json:"undrain,omitempty"`
	Kill    *KillStep    `yaml:"kill" json:"kill,omitempty"`
	Restart *RestartStep `yaml:"restart" json:"restart,omitempty"`
	Assert  *AssertStep  `yaml:"assert" json:"assert,omitempty"`
	// Network and freeze faults: on a cluster that can cut networks (cell.Partitioner)
	// or freeze nodes (cell.Pauser), such as the compose cluster.
	Partition *FaultStep `yaml:"partition" json:"partition,omitempty"`
	Heal      *FaultStep `yaml:"heal" json:"heal,omitempty"`
	Pause     *FaultStep `yaml:"pause" json:"pause,omitempty"`
	Unpause   *FaultStep `yaml:"unpause" json:"unpause,omitempty"`
	// A lost disk, on a cluster that can wipe a node's data (cell.Wiper).
	Wipe *WipeStep `yaml:"wipe" json:"wipe,omitempty"`
	// The poison pill, on a cluster with tenants and faults on (see PoisonStep).
	Poison *PoisonStep `yaml:"poison" json:"poison,omitempty"`
	// A bucket moved to another cell, on a cluster with a map group (see MoveStep).
	Move *MoveStep `yaml:"move" json:"move,omitempty"`
}

// Overrides change a scenario's load step for one run (cellctl drill run --rate and
// --duration); a nil field keeps the scenario's value.
type Overrides struct {
	Rate     *float64       // requests per second
	Duration *time.Duration // how long requests keep arriving
}

// LoadOverride is what a run changed of the scenario's load step, with the
// scenario's own values; a zero pair was left as the scenario has it.
type LoadOverride struct {
	Rate             float64       `json:"rate,omitempty"`
	ScenarioRate     float64       `json:"scenario_rate,omitempty"`
	Duration         time.Duration `json:"duration_ns,omitempty"`
	ScenarioDuration time.Duration `json:"scenario_duration_ns,omitempty"`
}

// Override sets the rate and the duration of the scenario's load step; the report of
// the run says what was changed. It refuses a value out of range, a load that would
// send no request, and a scenario without a load step; its error begins with the
// setting it refuses ("rate" or "duration").
func (s *Scenario) Override(o Overrides) error {
	if o.Rate == nil && o.Duration == nil {
		return nil
	}
	setting := "rate"
	if o.Rate == nil {
		setting = "duration"
	}
	switch {
	case o.Rate != nil && !(*o.Rate > 0 && *o.Rate <= loadgen.MaxRate):
		return fmt.Errorf("rate must be above 0 and at most %d requests per second, not %g", loadgen.MaxRate, *o.Rate)
	case o.Duration != nil && !(*o.Duration > 0 && *o.Duration <= loadgen.MaxDuration):
		return fmt.Errorf("duration must be above 0 and at most %v, not %v", loadgen.MaxDuration, *o.Duration)
	}
	var load *LoadStep
	for _, st := range s.Steps {
		if st.Load != nil {
			load = st.Load
			break
		}
	}
	if load == nil {
		return fmt.Errorf("%s: scenario %s has no load step to set it on", setting, s.Name)
	}
	ov := &LoadOverride{}
	rate, d := load.Rate, time.Duration(load.Duration)
	if o.Rate != nil {
		ov.Rate, ov.ScenarioRate, rate = *o.Rate, load.Rate, *o.Rate
	}
	if o.Duration != nil {
		ov.Duration, ov.ScenarioDuration, d = *o.Duration, time.Duration(load.Duration), *o.Duration
	}
	if rate*d.Seconds() < 1 {
		return fmt.Errorf("%s must give the load at least one request: %g requests per second for %v give none", setting, rate, d)
	}
	load.Rate, load.Duration = rate, Duration(d)
	s.overridden = ov
	return nil
}

// LoadStep starts load in the background (it seeds its objects first).
type LoadStep struct {
	Rate     float64  `yaml:"rate" json:"rate"`
	Duration Duration `yaml:"duration" json:"duration"`
	Mix      string   `yaml:"mix" json:"mix,omitempty"` // as cellctl load --mix
	Keys     int      `yaml:"keys" json:"keys,omitempty"`
	PerCell  int      `yaml:"buckets_per_cell" json:"buckets_per_cell,omitempty"`
	// Noisy adds a noisy tenant: one bucket with a load of its own (see NoisyLoad).
	Noisy *NoisyLoad `yaml:"noisy" json:"noisy,omitempty"`
}

// Expectations of an action's outcome.
const (
	ExpectDone    = "done"
	ExpectRefused = "refused"
	ExpectFailed  = "failed"
)

// DrainStep drains nodes of a tier of a cell through the guardrails.
type DrainStep struct {
	Cell     string   `yaml:"cell" json:"cell,omitempty"`
	Tier     string   `yaml:"tier" json:"tier"`
	Count    int      `yaml:"count" json:"count,omitempty"`
	Nodes    []string `yaml:"nodes" json:"nodes,omitempty"`
	Override string   `yaml:"override" json:"override,omitempty"`
	Expect   string   `yaml:"expect" json:"expect,omitempty"` // done (default) or refused
}

// UndrainStep starts the nodes of a cell the drill stopped, in dependency order.
type UndrainStep struct {
	Cell string `yaml:"cell" json:"cell,omitempty"`
}

// KillStep kills nodes outright, as a crash would: Nodes, or Count nodes of a tier.
type KillStep struct {
	Cell  string   `yaml:"cell" json:"cell,omitempty"`
	Tier  string   `yaml:"tier" json:"tier,omitempty"`
	Count int      `yaml:"count" json:"count,omitempty"`
	Nodes []string `yaml:"nodes" json:"nodes,omitempty"`
}

// RestartStep restarts tiers of a cell. Nodes of those tiers that are down (drained or
// killed by the drill) are part of it: a restart is also how a cell is recovered.
type RestartStep struct {
	Cell         string   `yaml:"cell" json:"cell,omitempty"`
	Tiers        []string `yaml:"tiers" json:"tiers,omitempty"`
	Order        []string `yaml:"order" json:"order,omitempty"`
	Cold         bool     `yaml:"cold" json:"cold,omitempty"`
	Override     string   `yaml:"override" json:"override,omitempty"`
	StartTimeout Duration `yaml:"start_timeout" json:"start_timeout,omitempty"`
	Expect       string   `yaml:"expect" json:"expect,omitempty"` // done (default), refused or failed
}

// FaultStep names the nodes of a partition, heal, pause or unpause step: Nodes, or
// the cell's index leader as it is when the step runs (Leader), or Count nodes of Tier
// (followers before the leader). A heal or an unpause that names none acts on every
// node the drill cut off or paused.
//
//   - partition: {leader: true}              # the target's index leader, cut off its cell
//   - partition: {tier: index, count: 2}     # two index nodes, cut off together
//   - heal: {}                               # every node cut off, back
//   - pause: {nodes: [cell-1-storage-0]}     # frozen, as a hung host
type FaultStep struct {
	Cell   string   `yaml:"cell" json:"cell,omitempty"`
	Nodes  []string `yaml:"nodes" json:"nodes,omitempty"`
	Leader bool     `yaml:"leader" json:"leader,omitempty"`
	Tier   string   `yaml:"tier" json:"tier,omitempty"`
	Count  int      `yaml:"count" json:"count,omitempty"`
}

// AssertStep checks the cluster now: a cell's index quorum ("lost" or "held"), or its
// error rate over the last Window (default 5s) above or below a share.
type AssertStep struct {
	Cell           string   `yaml:"cell" json:"cell,omitempty"` // a cell, "others" or "all"
	Quorum         string   `yaml:"quorum" json:"quorum,omitempty"`
	ErrorRateAbove *float64 `yaml:"error_rate_above" json:"error_rate_above,omitempty"`
	ErrorRateBelow *float64 `yaml:"error_rate_below" json:"error_rate_below,omitempty"`
	Window         Duration `yaml:"window" json:"window,omitempty"`
	// Within lets a quorum or leader assertion wait this long for the state to appear.
	Within Duration `yaml:"within" json:"within,omitempty"`
	// Leader "moved": the cell's index group has a leader, and it is not the node the
	// last partition or pause step took from it, which no longer leads (a cut-off
	// leader steps down and refuses reads and writes).
	Leader string `yaml:"leader" json:"leader,omitempty"`
}

// Kind names the step's action.
func (s Step) Kind() string {
	switch {
	case s.Load != nil:
		return "load"
	case s.Wait != nil:
		return "wait"
	case s.Drain != nil:
		return "drain"
	case s.Undrain != nil:
		return "undrain"
	case s.Kill != nil:
		return "kill"
	case s.Restart != nil:
		return "restart"
	case s.Assert != nil:
		return "assert"
	case s.Partition != nil:
		return "partition"
	case s.Heal != nil:
		return "heal"
	case s.Pause != nil:
		return "pause"
	case s.Unpause != nil:
		return "unpause"
	case s.Wipe != nil:
		return "wipe"
	case s.Poison != nil:
		return "poison"
	case s.Move != nil:
		return "move"
	}
	return ""
}

func (s Step) actions() int {
	n := 0
	for _, set := range []bool{s.Load != nil, s.Wait != nil, s.Drain != nil, s.Undrain != nil, s.Kill != nil, s.Restart != nil, s.Assert != nil,
		s.Partition != nil, s.Heal != nil, s.Pause != nil, s.Unpause != nil, s.Wipe != nil, s.Poison != nil, s.Move != nil} {
		if set {
			n++
		}
	}
	return n
}

// hasNoisy reports whether the scenario's load step has a noisy tenant.
func (s *Scenario) hasNoisy() bool {
	return slices.ContainsFunc(s.Steps, func(st Step) bool { return st.Load != nil && st.Load.Noisy != nil })
}

//go:embed scenarios/*.yaml
var builtins embed.FS

// Builtin is a scenario embedded in the binary.
type Builtin struct {
	Name        string
	Description string
}

// Builtins lists the scenarios embedded in the binary.
func Builtins() []Builtin {
	ents, _ := builtins.ReadDir("scenarios")
	var out []Builtin
	for _, e := range ents {
		s, err := LoadScenario(strings.TrimSuffix(e.Name(), ".yaml"))
		if err != nil {
			continue
		}
		out = append(out, Builtin{Name: s.Name, Description: s.Description})
	}
	return out
}

// LoadScenario reads a built-in scenario by name, or a YAML file by path.
func LoadScenario(nameOrPath string) (*Scenario, error) {
	b, err := builtins.ReadFile(path.Join("scenarios", nameOrPath+".yaml"))
	if err != nil {
		b, err = os.ReadFile(nameOrPath)
		if errors.Is(err, os.ErrNotExist) {
			var names []string
			for _, s := range Builtins() {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("no scenario %q: not a built-in (%s) nor a file", nameOrPath, strings.Join(names, ", "))
		}
		if err != nil {
			return nil, err
		}
	}
	return ParseScenario(b)
}

// ParseScenario decodes a scenario strictly and checks it.
func ParseScenario(b []byte) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if s.Name == "" {
		return nil, errors.New("scenario: no name")
	}
	if len(s.Steps) == 0 {
		return nil, fmt.Errorf("scenario %s: no steps", s.Name)
	}
	if st := s.Stop; st.OthersErrorRateAbove < 0 || st.OthersErrorRateAbove >= 1 || st.Window < 0 || st.For < 0 || st.MinRequests < 0 {
		return nil, fmt.Errorf("scenario %s: stop: want others_error_rate_above between 0 and 1, and window, for and min_requests not negative", s.Name)
	}
	tier := func(t string) error {
		if !slices.Contains(guard.Tiers, cell.Role(t)) {
			return fmt.Errorf("tier %q: want index, placement or storage", t)
		}
		return nil
	}
	for i, st := range s.Steps {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("scenario %s: step %d (%s): %s", s.Name, i+1, st.Kind(), fmt.Sprintf(format, args...))
		}
		if st.actions() != 1 {
			return nil, fmt.Errorf("scenario %s: step %d: want exactly one of load, wait, drain, undrain, kill, restart, assert, partition, heal, pause, unpause, wipe, poison, move", s.Name, i+1)
		}
		switch {
		case st.Load != nil:
			if st.Load.Rate <= 0 || st.Load.Duration <= 0 {
				return nil, bad("want a rate and a duration")
			}
			if n := st.Load.Noisy; n != nil && !(n.Rate > 0 && n.Rate <= loadgen.MaxRate) {
				return nil, bad("noisy: want a rate above 0 and at most %d requests per second", loadgen.MaxRate)
			}
		case st.Move != nil:
			if e := st.Move.Expect; e != "" && e != ExpectDone && e != ExpectRefused && e != ExpectFailed {
				return nil, bad("expect %q: want done, refused or failed", e)
			}
			if b := st.Move.Bucket; (b == "" || b == NoisyBucket) && !s.hasNoisy() {
				return nil, bad("the noisy bucket moves only in a scenario whose load step has a noisy load (load: {noisy: {rate: ...}})")
			}
		case st.Drain != nil:
			if err := tier(st.Drain.Tier); err != nil {
				return nil, bad("%v", err)
			}
			if e := st.Drain.Expect; e != "" && e != ExpectDone && e != ExpectRefused {
				return nil, bad("expect %q: want done or refused", e)
			}
		case st.Kill != nil:
			if len(st.Kill.Nodes) == 0 {
				if err := tier(st.Kill.Tier); err != nil || st.Kill.Count < 1 {
					return nil, bad("want nodes, or a tier and a count")
				}
			}
		case st.Restart != nil:
			for _, t := range append(slices.Clone(st.Restart.Tiers), st.Restart.Order...) {
				if err := tier(t); err != nil {
					return nil, bad("%v", err)
				}
			}
			if e := st.Restart.Expect; e != "" && e != ExpectDone && e != ExpectRefused && e != ExpectFailed {
				return nil, bad("expect %q: want done, refused or failed", e)
			}
		case st.Assert != nil:
			a := st.Assert
			n := 0
			if a.Quorum != "" {
				n++
				if a.Quorum != "lost" && a.Quorum != "held" {
					return nil, bad("quorum %q: want lost or held", a.Quorum)
				}
			}
			if a.ErrorRateAbove != nil {
				n++
			}
			if a.ErrorRateBelow != nil {
				n++
			}
			if a.Leader != "" {
				n++
				if a.Leader != "moved" {
					return nil, bad("leader %q: want moved", a.Leader)
				}
			}
			if n != 1 {
				return nil, bad("want one of quorum, error_rate_above, error_rate_below, leader")
			}
		case st.Wipe != nil:
			if e := st.Wipe.Expect; e != "" && e != ExpectDone && e != ExpectRefused {
				return nil, bad("expect %q: want done or refused", e)
			}
			if len(st.Wipe.Nodes) == 0 && st.Wipe.Count < 1 {
				return nil, bad("want nodes, or a count of storage nodes")
			}
		case st.Partition != nil || st.Pause != nil:
			f := st.Partition
			if f == nil {
				f = st.Pause
			}
			n := 0
			for _, set := range []bool{len(f.Nodes) > 0, f.Leader, f.Tier != "" || f.Count > 0} {
				if set {
					n++
				}
			}
			if n != 1 {
				return nil, bad("want nodes, leader: true, or a tier and a count")
			}
			if f.Tier != "" || f.Count > 0 {
				if err := tier(f.Tier); err != nil || f.Count < 1 {
					return nil, bad("want a tier (index, placement or storage) and a count of 1 or more")
				}
			}
		}
	}
	return &s, nil
}
