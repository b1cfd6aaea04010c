package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/drill"
	"github.com/cellarsim/cellar/loadgen"
	"github.com/cellarsim/cellar/localcluster"
)

type compareOptions struct {
	a, b, reportDir, output, s3Addr string
	rate                            float64
	duration                        time.Duration
	setRate, setDuration            bool
}

func newDrillCompareCommand() *cobra.Command {
	var o compareOptions
	cmd := &cobra.Command{
		Use:   "compare <scenario> --a SETTINGS --b SETTINGS",
		Short: "Run one scenario on two clusters, one after the other, and put them side by side",
		Long: `compare runs the same drill scenario on two clusters it starts itself, one after the
other, each in a new temporary data directory that is removed afterwards, and writes one
page that puts them side by side: the share of requests that failed, which cells were
hit, the time to recover, what the guardrails refused, a one-line verdict per side, and
every cell's availability on one time axis. It is made for a projector.

--a and --b give each side's cluster as key=value pairs over the default topology:
  cells=N             number of cells
  guardrails=on|off   off: nothing is refused (teaching only; said loudly everywhere)
  index_nodes=N, placement_nodes=N, storage_nodes=N
  gateways=N, sharding=all|plain|shuffle, shard_size=K, tenants=N
                      the gateway fleet and its tenants behind a front router

A scenario with a poison step (poison-pill) runs on clusters with faults on, a front
router and, unless a side says otherwise, 8 gateways, shard size 2 and 100 tenants; the
page then shows the share of tenants fully down, partly affected and untouched beside
the formula of each side's sharding, and the gateways crashed.

With the guardrails off, a step the scenario expects to be refused goes through as
typed, and its replay with an override is skipped: the typo takes the cell down at once.

--report DIR gets compare.html and compare.json, and each side's full drill report in
DIR/a and DIR/b. --output json prints compare.json. Each side's cluster uses --s3-addr
for its S3 API; nothing is left running when compare ends, also on Ctrl-C.

Exit codes: 0 both drills ran and every check passed; 1 a drill failed or a check did
not pass (the page is still written); 2 the command line is wrong or the topology
cannot run on this machine.`,
		Example: `  cellctl drill compare s3-2017 --a cells=1,guardrails=off --b cells=4 --report ./compare
  cellctl drill compare s3-2017 --a cells=4 --b cells=8 --report ./cells --rate 60
  cellctl drill compare s3-2017 --a cells=1,guardrails=off --b cells=4 --report ./compare --output json
  cellctl drill compare poison-pill --a sharding=all --b sharding=shuffle --report ./poison`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("want one scenario: a built-in name (see 'cellctl drill list') or a YAML file")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.setRate, o.setDuration = cmd.Flags().Changed("rate"), cmd.Flags().Changed("duration")
			return runCompare(cmd, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.a, "a", "", "side A's cluster, as key=value,... (e.g. cells=1,guardrails=off)")
	f.StringVar(&o.b, "b", "", "side B's cluster, as key=value,... (e.g. cells=4)")
	f.StringVar(&o.reportDir, "report", "", "directory for compare.html, compare.json and both reports (default ./compare-SCENARIO-TIME)")
	f.StringVar(&o.s3Addr, "s3-addr", "127.0.0.1:9100", "address of each side's S3 API while it runs")
	f.Float64Var(&o.rate, "rate", 0, fmt.Sprintf("requests per second of the load, instead of the scenario's (at most %d)", loadgen.MaxRate))
	f.DurationVar(&o.duration, "duration", 0, fmt.Sprintf("how long the load runs, instead of the scenario's (at most %v)", loadgen.MaxDuration))
	outputFlag(cmd, &o.output)
	return cmd
}

// compareSide is one side as the command line gives it.
type compareSide struct {
	name, flag, spec string
	topo             cell.Topology
}

func runCompare(cmd *cobra.Command, name string, o compareOptions) error {
	if err := checkOutput(&o.output); err != nil {
		return err
	}
	scenario, err := drill.LoadScenario(name)
	if err != nil {
		return usageErrorf("%v (see 'cellctl drill list')", err)
	}
	base := cell.DefaultTopology()
	base.S3Addr = o.s3Addr
	if scenario.Poisons() {
		// The poison pill needs tenants behind a front router, and faults on.
		base.Gateways, base.ShardSize, base.Routers, base.Faults = poisonGateways, cell.DefaultShardSize, 1, true
		if base.Tenants, err = cell.NewTenants(poisonTenants); err != nil {
			return err
		}
	}
	sides := []*compareSide{{name: "A", flag: "a", spec: o.a}, {name: "B", flag: "b", spec: o.b}}
	for _, s := range sides {
		if strings.TrimSpace(s.spec) == "" {
			return usageErrorf("--%s is required: the cluster of side %s, as key=value,... (e.g. --%s cells=4)", s.flag, s.name, s.flag)
		}
		t, err := drill.ParseSide(s.spec, base)
		if err != nil {
			return usageErrorf("--%s: %v", s.flag, err)
		}
		s.topo = t
		if err := fitsThisMachine(t); err != nil {
			return usageErrorf("--%s %s: %v", s.flag, s.spec, err)
		}
	}
	var ov drill.Overrides
	if o.setRate {
		ov.Rate = &o.rate
	}
	if o.setDuration {
		ov.Duration = &o.duration
	}
	// Checked once here, so that a bad --rate is a usage error before anything starts.
	if sc, _ := drill.LoadScenario(name); sc != nil {
		if err := sc.Override(ov); err != nil {
			return usageErrorf("--%v", err)
		}
	}
	if l, err := net.Listen("tcp", o.s3Addr); err != nil {
		return fmt.Errorf("%s is in use (is a cluster running? stop it, or pick another address with --s3-addr)", o.s3Addr)
	} else {
		l.Close()
	}
	dir := o.reportDir
	if dir == "" {
		dir = fmt.Sprintf("compare-%s-%s", filepath.Base(strings.TrimSuffix(name, filepath.Ext(name))), time.Now().UTC().Format("20060102-150405"))
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := cmd.OutOrStdout()
	if o.output == outputJSON {
		progress = cmd.ErrOrStderr()
	}
	cmp := &drill.Comparison{}
	var runErrs []error
	for i, s := range sides {
		sc, _ := drill.LoadScenario(name)
		_ = sc.Override(ov)
		setup := drill.DescribeSide(s.topo)
		fmt.Fprintf(progress, "[%d/2] %s: %s — starting %d nodes\n", i+1, s.name, setup, len(s.topo.Nodes()))
		rep, err := runSide(ctx, s, sc, prefixed(progress, s.name+"  "))
		if rep == nil {
			return fmt.Errorf("side %s (%s): %w", s.name, s.spec, err)
		}
		fmt.Fprintf(progress, "[%d/2] %s: %s\n", i+1, s.name, rep.Verdict())
		side := drill.CompareSide{Name: s.name, Setup: setup, Report: rep}
		if i == 0 {
			cmp.A = side
		} else {
			cmp.B = side
		}
		if err != nil {
			runErrs = append(runErrs, fmt.Errorf("side %s: %w", s.name, err))
		}
		if ctx.Err() != nil {
			return errors.New("interrupted; every node was stopped")
		}
	}
	cmp.Title = fmt.Sprintf("%s: %s against %s", cmp.A.Report.Scenario, cmp.A.Setup, cmp.B.Setup)
	if err := cmp.Write(dir); err != nil {
		return fmt.Errorf("write the comparison: %w", err)
	}
	out := cmd.OutOrStdout()
	if o.output == outputJSON {
		j := cmp.JSON()
		j.Reports = [2]string{filepath.Join(dir, "a", "report.html"), filepath.Join(dir, "b", "report.html")}
		if err := printJSON(out, j); err != nil {
			return err
		}
	} else {
		printComparison(out, cmp, dir)
	}
	return errors.Join(runErrs...)
}

// The fleet a poison-pill comparison runs on unless a side says otherwise: the
// issue's 8 gateways, shard size 2 and 100 tenants.
const (
	poisonGateways = 8
	poisonTenants  = 100
)

// runSide starts side s's cluster in a temporary data directory, runs the scenario on
// it, and stops and removes the cluster, whatever happened. On a cluster with faults
// on, the drill acts through the supervisor's control endpoint, as 'cellctl drill run'
// does: the poison pill is armed only there, audited, under the kill switch.
func runSide(ctx context.Context, s *compareSide, sc *drill.Scenario, progress io.Writer) (*drill.Report, error) {
	tmp, err := os.MkdirTemp("", "cellar-compare-"+strings.ToLower(s.name)+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	sup, err := localcluster.Start(ctx, s.topo, tmp, localcluster.Options{FastGossip: true, StopTimeout: 5 * time.Second})
	if err != nil {
		if ctx.Err() != nil {
			return nil, errors.New("interrupted while starting; every node was stopped")
		}
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = sup.Stop(stopCtx)
	}()
	topo := sup.Topology()
	env := drill.Env{Topology: topo, Dir: tmp, Cluster: sup.Cluster(), Command: commandLine(), Progress: progress}
	env.Load.Endpoint, env.Load.AccessKey, env.Load.SecretKey, env.Load.Region = sup.S3Endpoint(), topo.AccessKey, topo.SecretKey, topo.Region
	env.Load.Tenants = topo.Tenants
	if topo.Faults {
		_, stopControl, err := sup.ServeControl()
		if err != nil {
			return nil, err
		}
		defer stopControl()
		cl, err := attachCluster(ctx, sup.ClusterFile(), localcluster.Caller{Command: commandLine(), Reason: "drill " + sc.Name})
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		env.Cluster = cl
	}
	return drill.RunScenario(ctx, env, sc)
}

// printComparison prints both sides' figures for a terminal.
func printComparison(out io.Writer, c *drill.Comparison, dir string) {
	a, b := c.A.Figures(), c.B.Figures()
	fmt.Fprintf(out, "\n%s\n\n", c.Title)
	row := func(label, x, y string) { fmt.Fprintf(out, "  %-18s %-34s %s\n", label, x, y) }
	row("", "A: "+a.Setup, "B: "+b.Setup)
	row("requests failed", pctf1(a.FailedShare), pctf1(b.FailedShare))
	hit := func(f drill.SideFigures) string {
		s := fmt.Sprintf("%d of %d", len(f.CellsHit), f.Cells)
		if len(f.CellsHit) > 0 {
			s += " (" + strings.Join(f.CellsHit, ", ") + ")"
		}
		return s
	}
	row("cells hit", hit(a), hit(b))
	rec := func(f drill.SideFigures) string {
		if f.Recovery == 0 {
			return "-"
		}
		s := f.Recovery.Round(100 * time.Millisecond).String()
		if !f.Restored {
			s += " (not back)"
		}
		return s
	}
	row("time to recover", rec(a), rec(b))
	row("refused", strconv.Itoa(len(a.Refused)), strconv.Itoa(len(b.Refused)))
	if a.Poison != nil || b.Poison != nil {
		for _, r := range []struct {
			label string
			v     func(*drill.PoisonReport) string
		}{
			{"tenants fully down", func(p *drill.PoisonReport) string {
				return fmt.Sprintf("%s (%d)", pctf1(p.FullyDown), len(p.DownTenants))
			}},
			{"formula", func(p *drill.PoisonReport) string { return pctf1(p.Formula) + " " + p.FormulaText }},
			{"partly affected", func(p *drill.PoisonReport) string { return pctf1(p.PartlyAffected) }},
			{"gateways crashed", func(p *drill.PoisonReport) string { return fmt.Sprintf("%d of %d", len(p.Crashed), p.Gateways) }},
		} {
			v := func(f drill.SideFigures) string {
				if f.Poison == nil {
					return "-"
				}
				return r.v(f.Poison)
			}
			row(r.label, v(a), v(b))
		}
	}
	fmt.Fprintf(out, "\n  A: %s\n  B: %s\n\nreport: %s\n", a.Verdict, b.Verdict, filepath.Join(dir, "compare.html"))
}

func pctf1(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// Rough cost of one node on this machine, for refusing a topology that cannot run.
const (
	nodeMemoryMB = 60
	maxNodes     = 200
)

// fitsThisMachine refuses a topology whose nodes would not fit in this machine's free
// memory, or that asks for more processes than one machine runs sensibly.
func fitsThisMachine(t cell.Topology) error {
	n := len(t.Nodes())
	if n > maxNodes {
		return fmt.Errorf("%d nodes is more processes than one machine runs (at most %d): use fewer cells", n, maxNodes)
	}
	if avail := availableMB(); avail > 0 && n*nodeMemoryMB > avail {
		return fmt.Errorf("%d nodes need about %d MB of memory and this machine has %d MB free: use fewer cells", n, n*nodeMemoryMB, avail)
	}
	return nil
}

// availableMB is MemAvailable from /proc/meminfo, or 0 where there is none.
func availableMB() int {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return kb / 1024
		}
	}
	return 0
}

// prefixed writes every line to w with a prefix.
func prefixed(w io.Writer, prefix string) io.Writer { return &prefixWriter{w: w, prefix: prefix} }

type prefixWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.midLine {
			if _, err := io.WriteString(p.w, p.prefix); err != nil {
				return 0, err
			}
		}
		if _, err := p.w.Write(line); err != nil {
			return 0, err
		}
		p.midLine = line[len(line)-1] != '\n'
	}
	return len(b), nil
}
