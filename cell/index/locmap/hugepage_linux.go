package locmap

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Huge pages for the arenas of a rebuild.
//
// A rebuild writes every byte of its arenas once, into memory the process has
// never touched, so faulting that memory in is a large share of its cost: on
// a 2-core VM, filling 200 MB of fresh 4 KiB pages took 150-300 ms of kernel
// time and did not get faster with a second thread, while 2 MiB pages took
// about 40 ms. The Go runtime leaves its heap to the system's THP setting, and
// where that is "madvise" the heap gets no huge pages at all.
//
// So a Builder made by NewBuilder asks for transparent huge pages on the
// 2 MiB-aligned part of each arena of 4 MiB or more before it writes to it,
// and withdraws the request once the arena is full. The withdrawal matters:
// the advice belongs to the address range, not to the arena, and left in place
// it would let the kernel (khugepaged) fill in whole 2 MiB pages where the Go
// runtime later hands memory back, so that the process would hold more than
// its heap. Pages already huge stay huge until the runtime frees them. (The
// kernel has no "back to the default" advice: the range keeps an explicit "no
// huge pages", which in "madvise" mode is what the default means anyway.)
//
// It is done only where THP is in "madvise" mode (with "always" the arenas get
// huge pages anyway; with "never" the advice is ignored), and not at all with
// GODEBUG=disablethp=1, the Go runtime's own switch for keeping THP off a heap.
// Merges, which rewrite runs into memory the heap is reusing (and so has
// already faulted in), never ask.

var hugePages = sync.OnceValue(func() int {
	if strings.Contains(os.Getenv("GODEBUG"), "disablethp=1") {
		return 0
	}
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !strings.Contains(string(mode), "[madvise]") {
		return 0
	}
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
	if err != nil {
		return 0
	}
	size, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || size <= 0 || size&(size-1) != 0 {
		return 0
	}
	return size
})

// adviseHugePages asks for huge pages on the aligned part of arena (on), or
// withdraws the request (off). The arena must not have been written yet when
// asking.
func adviseHugePages(arena []byte, on bool) {
	page := hugePages()
	if page == 0 {
		return
	}
	arena = arena[:cap(arena)]
	lo, hi := hugeRange(uintptr(unsafe.Pointer(unsafe.SliceData(arena))), len(arena), page)
	if lo == hi {
		return
	}
	advice := syscall.MADV_HUGEPAGE
	if !on {
		advice = syscall.MADV_NOHUGEPAGE
	}
	_ = syscall.Madvise(arena[lo:hi], advice) // advice only: an error changes nothing
}
