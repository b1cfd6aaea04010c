package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws "label [#####.....] 42% 420000/1000000" on one line of a
// terminal, redrawn as the work goes on; to a file or pipe it writes the same
// line at every quarter, so that a log gets a few lines rather than a hundred
// carriage returns.
type progressBar struct {
	w     io.Writer
	tty   bool
	label string
	total int
	last  int
}

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	b := &progressBar{w: w, tty: isTerminal(w), label: label, total: total, last: -1}
	b.set(0)
	return b
}

// set shows that done of the total are done.
func (b *progressBar) set(done int) {
	pct := 100 * done / max(b.total, 1)
	if !b.tty {
		if done >= b.total {
			return // finish says it
		}
		pct -= pct % 25
	}
	if pct == b.last {
		return
	}
	b.last = pct
	if b.tty {
		fmt.Fprint(b.w, "\r"+b.line(done))
	} else {
		fmt.Fprintln(b.w, b.line(done))
	}
}

func (b *progressBar) line(done int) string {
	const width = 30
	fill := width * done / max(b.total, 1)
	return fmt.Sprintf("%s [%s%s] %3d%% %d/%d", b.label, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		100*done/max(b.total, 1), done, b.total)
}

// finish shows the bar full, with the time the work took.
func (b *progressBar) finish(took time.Duration) {
	if b.tty {
		fmt.Fprint(b.w, "\r")
	}
	fmt.Fprintf(b.w, "%s in %s\n", b.line(b.total), took.Round(time.Millisecond))
}

// isTerminal reports whether w is a terminal, where a status line can be
// redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
