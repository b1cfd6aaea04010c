package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/cellarsim/cellar/drill/guard"
)

// printGuardrailsOff prints the banner every command about a cluster without
// guardrails starts with: it must not be missed on a terminal or a projector.
func printGuardrailsOff(out io.Writer) {
	bar := strings.Repeat("#", 78)
	fmt.Fprintf(out, "%s\n## %s\n%s\n", bar, guard.GuardrailsOffBanner, bar)
}
