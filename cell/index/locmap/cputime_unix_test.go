//go:build unix

package locmap

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) used by the process so
// far. Benchmarks report rates per CPU-second as well as per wall-second,
// because the shared build machines are often busy with other work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
