package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cell/index/seed"
)

// RebuildOptions say what RunRebuild measures. The zero value of a field is its
// default, except for Dir, which is required.
type RebuildOptions struct {
	// Objects are the object counts to measure (default 100000 and 1000000); each
	// is measured with each cell count, its objects spread evenly over the cells.
	Objects []int
	// Cells are the cell counts to measure, 1 to 256 each (default 1 and 4).
	Cells []int
	// Dir holds the seeded databases (kept for later runs with the same numbers),
	// the nodes' logs, rebuild.csv and rebuild.svg.
	Dir string
	// Reseed seeds again even where Dir holds databases with these numbers.
	Reseed bool
	// Together, with several cells, also restarts all of them at once.
	Together bool
	// Pending is the nodes' --rebuild-pending: "pebble" (default) or "slowdown".
	Pending string
	// Timeout is the longest one node may take to rebuild (default 10m).
	Timeout time.Duration
	// Runs is how many times each measure is taken, 1 to 100; the median is
	// reported (default 3).
	Runs int
	// Executable is the cellctl binary that runs the index nodes, as
	// `Executable daemon index FLAGS`; default this process's own executable.
	Executable string
	// Progress receives what a person watching wants to see: seeding, restarts, one
	// line per measurement. Nil discards it.
	Progress io.Writer
}

// EnsureDefaults fills in the fields left at their zero value.
func (o *RebuildOptions) EnsureDefaults() {
	if o.Objects == nil {
		o.Objects = []int{100_000, 1_000_000}
	}
	if o.Cells == nil {
		o.Cells = []int{1, 4}
	}
	if o.Pending == "" {
		o.Pending = "pebble"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Runs == 0 {
		o.Runs = 3
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Validate reports the first option out of range. The message starts with the
// option's name in lower case, as the command line's flags are named.
func (o *RebuildOptions) Validate() error {
	if o.Runs < 1 || o.Runs > 100 {
		return fmt.Errorf("runs: %d is not between 1 and 100", o.Runs)
	}
	if o.Pending != "pebble" && o.Pending != "slowdown" {
		return fmt.Errorf("pending %q: want pebble or slowdown", o.Pending)
	}
	for _, n := range o.Objects {
		if n <= 0 {
			return fmt.Errorf("objects: %d is not a positive count", n)
		}
	}
	for _, c := range o.Cells {
		if c <= 0 || c > 256 {
			return fmt.Errorf("cells: %d is not between 1 and 256", c)
		}
	}
	return nil
}

// RebuildRow is what RunRebuild measured for one object count and cell count:
// the median of each measure over the runs.
type RebuildRow struct {
	Objects        int `json:"objects"`
	Cells          int `json:"cells"`
	ObjectsPerCell int `json:"objects_per_cell"`
	Runs           int `json:"runs"`
	// FirstServeMS is from process start to the first answered Lookup of a key in
	// the first key range; RebuildMS to the complete map (the slowest cell).
	FirstServeMS float64 `json:"first_serve_ms"`
	RebuildMS    float64 `json:"rebuild_ms"`
	// AllCellsRebuildMS is RebuildMS with every cell restarted at once (0 unless
	// Together and several cells).
	AllCellsRebuildMS float64 `json:"all_cells_rebuild_ms,omitempty"`
	// RebuildObjectsPerS is objects over the nodes' own rebuild time (Pebble open
	// to complete map); ScanObjectsPerS over the reference scan; Ratio is the
	// median of each run's rebuild rate over that run's scan rate.
	RebuildObjectsPerS float64 `json:"rebuild_objects_per_s"`
	ScanObjectsPerS    float64 `json:"scan_objects_per_s"`
	Ratio              float64 `json:"ratio"`
	// The same per CPU-second: steadier on a busy machine.
	RebuildObjectsPerCPUS float64 `json:"rebuild_objects_per_cpu_s"`
	ScanObjectsPerCPUS    float64 `json:"scan_objects_per_cpu_s"`
	CPURatio              float64 `json:"cpu_ratio"`
	// HeapBytesPerObject is a node's Go heap after the rebuild and a collection,
	// per object; MapBytesPerObject the map's own accounting.
	HeapBytesPerObject float64 `json:"heap_bytes_per_object"`
	MapBytesPerObject  float64 `json:"map_bytes_per_object"`
	// LoadAvg is the machine's 1-minute load average after the measurement.
	LoadAvg float64 `json:"load_avg_1m"`
}

// RunRebuild measures index restarts for every combination of o.Objects and
// o.Cells, seeding the databases where needed, and writes the rows to
// Dir/rebuild.csv and Dir/rebuild.svg as well as returning them.
func RunRebuild(ctx context.Context, o RebuildOptions) ([]RebuildRow, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("bench rebuild: %w", err)
	}
	if o.Dir == "" {
		return nil, fmt.Errorf("bench rebuild: no directory for the databases")
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		o.Executable = exe
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the bench directory: %w", err)
	}
	fmt.Fprintf(o.Progress, "machine: %d CPUs, load average %.2f\n", runtime.NumCPU(), loadAvg())
	var rows []RebuildRow
	for _, n := range o.Objects {
		for _, c := range o.Cells {
			row, err := measureRebuild(ctx, o, n, c)
			if err != nil {
				return nil, fmt.Errorf("%d objects, %d cells: %w", n, c, err)
			}
			rows = append(rows, row)
			fmt.Fprintf(o.Progress, "  %d objects in %d cells: first serve %.0f ms, rebuilt in %.0f ms per cell, ratio %.2f (cpu %.2f), %.0f B/object\n",
				n, c, row.FirstServeMS, row.RebuildMS, row.Ratio, row.CPURatio, row.HeapBytesPerObject)
		}
	}
	csvPath, svgPath := filepath.Join(o.Dir, "rebuild.csv"), filepath.Join(o.Dir, "rebuild.svg")
	if err := writeRebuildCSV(csvPath, rows); err != nil {
		return nil, err
	}
	if err := os.WriteFile(svgPath, []byte(rebuildSVG(rows)), 0o644); err != nil {
		return nil, fmt.Errorf("write the plot: %w", err)
	}
	fmt.Fprintf(o.Progress, "wrote %s and %s\n", csvPath, svgPath)
	return rows, nil
}

// measureRebuild seeds (if needed) and measures n objects spread over cells.
func measureRebuild(ctx context.Context, o RebuildOptions, n, cells int) (RebuildRow, error) {
	base := filepath.Join(o.Dir, fmt.Sprintf("objects-%d-cells-%d", n, cells))
	dirs := make([]string, cells)
	counts := make([]int, cells)
	for i := range cells {
		dirs[i] = filepath.Join(base, indexNodeID(i))
		counts[i] = n / cells
		if i < n%cells {
			counts[i]++
		}
	}
	if err := seedCells(base, dirs, counts, o.Reseed, o.Progress); err != nil {
		return RebuildRow{}, err
	}
	row := RebuildRow{Objects: n, Cells: cells, ObjectsPerCell: n / cells, Runs: o.Runs}

	tty := isTerminal(o.Progress)
	clearLine := func() {
		if tty {
			fmt.Fprintf(o.Progress, "\r%70s\r", "")
		}
	}

	// Each measure is taken o.Runs times and the median kept: on a shared machine
	// single restarts and single scans vary by up to 2x.
	var firstServe, rebuilt, all, rebuildSec, cpuSec, heapPer, mapPer, scanWall, scanCPU, ratio, cpuRatio []float64
	for run := range o.Runs {
		runNote := ""
		if o.Runs > 1 {
			runNote = fmt.Sprintf(", run %d of %d", run+1, o.Runs)
		}
		// One cell at a time: the restart of one cell. On a terminal the
		// status line is redrawn per node; in a log it is one line per run.
		if !tty {
			fmt.Fprintf(o.Progress, "restarting %d index node%s one at a time%s\n", cells, plural(cells), runNote)
		}
		var fs, rb, rs, cs, hp, mp float64
		for i := range cells {
			if tty {
				fmt.Fprintf(o.Progress, "\rrestarting %s (%d of %d%s) ...", indexNodeID(i), i+1, cells, runNote)
			}
			m, err := restartIndexes(ctx, o, base, []int{i}, dirs)
			if err != nil {
				return row, err
			}
			r := m[0]
			fs, rb = max(fs, ms(r.firstServe)), max(rb, ms(r.rebuilt))
			rs += r.rebuildSec
			cs += r.cpuSec
			hp += r.heapBytes / float64(counts[i]) / float64(cells)
			mp += r.mapBytes / float64(counts[i]) / float64(cells)
		}
		firstServe, rebuilt = append(firstServe, fs), append(rebuilt, rb)
		rebuildSec, cpuSec = append(rebuildSec, rs), append(cpuSec, cs)
		heapPer, mapPer = append(heapPer, hp), append(mapPer, mp)
		clearLine()
		if o.Together && cells > 1 {
			every := make([]int, cells)
			for i := range every {
				every[i] = i
			}
			fmt.Fprintf(o.Progress, "restarting all %d index nodes at once%s ...", cells, runNote)
			if !tty {
				fmt.Fprintln(o.Progress)
			}
			m, err := restartIndexes(ctx, o, base, every, dirs)
			if err != nil {
				return row, err
			}
			slowest := 0.0
			for _, r := range m {
				slowest = max(slowest, ms(r.rebuilt))
			}
			all = append(all, slowest)
			clearLine()
		}

		// The reference, in the same run: a raw scan of the same databases.
		scanned, w, c, err := scanCells(dirs)
		if err != nil {
			return row, err
		}
		if scanned != n {
			return row, fmt.Errorf("the scan saw %d objects, %d were seeded", scanned, n)
		}
		scanWall, scanCPU = append(scanWall, w.Seconds()), append(scanCPU, c.Seconds())
		// The ratios pair each run's restarts with that run's scan.
		ratio = append(ratio, per(w.Seconds(), rs))
		cpuRatio = append(cpuRatio, per(c.Seconds(), cs))
	}
	row.FirstServeMS, row.RebuildMS, row.AllCellsRebuildMS = median(firstServe), median(rebuilt), median(all)
	row.RebuildObjectsPerS = per(float64(n), median(rebuildSec))
	row.ScanObjectsPerS = per(float64(n), median(scanWall))
	row.Ratio = median(ratio)
	row.RebuildObjectsPerCPUS = per(float64(n), median(cpuSec))
	row.ScanObjectsPerCPUS = per(float64(n), median(scanCPU))
	row.CPURatio = median(cpuRatio)
	row.HeapBytesPerObject = median(heapPer)
	row.MapBytesPerObject = median(mapPer)
	row.LoadAvg = loadAvg()
	return row, nil
}

// indexNodeID is the id of the index node of cell number i.
func indexNodeID(i int) string { return cell.NodeID(cell.ID(i), cell.RoleIndex, 0) }

// seedCells seeds every cell's database unless base already holds these numbers,
// as its seeded.json says.
func seedCells(base string, dirs []string, counts []int, reseed bool, progress io.Writer) error {
	marker := filepath.Join(base, "seeded.json")
	want, err := json.Marshal(struct {
		Counts []int `json:"objects_per_cell"`
		Format int   `json:"format"`
	}{counts, seed.Format})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if got, err := os.ReadFile(marker); err == nil && string(got) == string(want) && !reseed {
		fmt.Fprintf(progress, "using the databases seeded in %s\n", base)
		return nil
	}
	if err := os.RemoveAll(base); err != nil {
		return fmt.Errorf("seed: remove the old databases: %w", err)
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	bar := newProgressBar(progress, fmt.Sprintf("seeding %d objects into %d cell%s", total, len(dirs), plural(len(dirs))), total)
	start := time.Now()
	done := 0
	for i, dir := range dirs {
		err := seed.Seed(dir, seed.Options{Bucket: seed.Bucket(i), Objects: counts[i], Progress: func(d int) { bar.set(done + d) }})
		if err != nil {
			return err
		}
		done += counts[i]
	}
	bar.finish(time.Since(start))
	if err := os.WriteFile(marker, want, 0o644); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
