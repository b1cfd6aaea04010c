package locmap

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// adviseHugePages asks the kernel to back the 2 MiB-aligned part of an arena
// that is about to be filled with transparent huge pages.
//
// A rebuild writes every byte of its arenas once, into memory the process has
// never touched, so faulting it in is a large share of the rebuild's cost: on
// a 2-core VM, filling 100 MB of fresh 4 KiB pages took 150-300 ms of kernel
// time and did not get faster with a second thread, while 2 MiB pages took
// about 40 ms. The Go runtime leaves its heap to the system's THP setting,
// which is often "madvise"; this is that advice, for the arenas only. It is
// only advice: where THP is off the kernel ignores it, and the memory stays
// ordinary Go heap memory, freed by the collector as usual.
func adviseHugePages(b []byte) {
	b = b[:cap(b)]
	if len(b) < 2*hugePage {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := int((start+hugePage-1)&^(hugePage-1) - start)
	hi := int((start+uintptr(len(b)))&^(hugePage-1) - start)
	if hi-lo < hugePage {
		return
	}
	_ = syscall.Madvise(b[lo:hi], syscall.MADV_HUGEPAGE)
}
