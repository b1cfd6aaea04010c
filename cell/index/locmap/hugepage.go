package locmap

// hugeRange returns the part [lo, hi) of an arena of n bytes at address start
// that consists of whole, aligned huge pages of the given size, when the arena
// is at least two huge pages long and holds at least one (else lo == hi == 0).
func hugeRange(start uintptr, n, page int) (lo, hi int) {
	if page <= 0 || n < 2*page {
		return 0, 0
	}
	p := uintptr(page)
	lo = int((start+p-1)&^(p-1) - start)
	hi = int((start+uintptr(n))&^(p-1) - start)
	if hi-lo < page {
		return 0, 0
	}
	return lo, hi
}
