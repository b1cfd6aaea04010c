package locmap

import "testing"

func TestHugeRange(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		start  uintptr
		n      int
		lo, hi int
	}{
		{0x4000_0000, 8 * mb, 0, 8 * mb},                          // aligned: all of it
		{0x4000_2000, 8 * mb, 2*mb - 0x2000, 8*mb - 0x2000},       // 8 KiB past a boundary: three pages
		{0x4000_2000, 8*mb + 12345, 2*mb - 0x2000, 8*mb - 0x2000}, // odd length
		{0x4010_0000, 4 * mb, 1 * mb, 3 * mb},                     // straddles: one page in the middle
		{0x4010_0000, 4*mb - 1, 0, 0},                             // just under two pages
		{0x4000_0000, 3 * mb, 0, 0},                               // under two pages: not worth a split mapping
		{0x4000_0000, 0, 0, 0},
	} {
		lo, hi := hugeRange(tc.start, tc.n, 2*mb)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("hugeRange(%#x, %d) = [%d, %d), want [%d, %d)", tc.start, tc.n, lo, hi, tc.lo, tc.hi)
		}
		if lo != hi && ((tc.start+uintptr(lo))%(2*mb) != 0 || (tc.start+uintptr(hi))%(2*mb) != 0 || lo < 0 || hi > tc.n) {
			t.Errorf("hugeRange(%#x, %d) = [%d, %d): not aligned inside the arena", tc.start, tc.n, lo, hi)
		}
	}
	if lo, hi := hugeRange(0x4000_0000, 8*mb, 0); lo != 0 || hi != 0 {
		t.Errorf("no huge pages: got [%d, %d)", lo, hi)
	}
}

// TestAdviseHugePages gives and withdraws the advice on real arenas of
// several sizes: whatever the kernel's THP setting, the arena must stay
// usable and hold what was written to it.
func TestAdviseHugePages(t *testing.T) {
	for _, n := range []int{0, 4096, 3 << 20, 8 << 20, 8<<20 + 12345} {
		arena := make([]byte, 0, n)
		adviseHugePages(arena, true)
		for i := 0; i < n; i++ {
			arena = append(arena, byte(i))
		}
		adviseHugePages(arena, false)
		for i := 0; i < n; i += 4093 {
			if arena[i] != byte(i) {
				t.Fatalf("arena of %d bytes: byte %d changed", n, i)
			}
		}
	}
}
