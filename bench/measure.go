package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cellarsim/cellar/cell/index"
)

// scanCells is the reference of the rebuild: it reads every object record of the
// databases in dirs, in order, on one goroutine, and returns how many it read,
// the wall time and this process's CPU time it took.
func scanCells(dirs []string) (n int, wall, cpu time.Duration, err error) {
	w0, c0 := time.Now(), selfCPU()
	for _, dir := range dirs {
		read, err := index.ScanObjects(dir, func(key, value []byte) bool { return true })
		if err != nil {
			return 0, 0, 0, fmt.Errorf("reference scan: %w", err)
		}
		n += read
	}
	return n, time.Since(w0), selfCPU() - c0, nil
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none. It leaves xs as it was.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// per is a/b, or 0 when b is too small to have been measured (CPU time is counted
// in clock ticks, so a small run can show none).
func per(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average, 0 where /proc/loadavg is missing.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
