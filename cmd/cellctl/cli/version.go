package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print which build of cellctl this is",
		Long: `version prints the version of cellctl as the Go toolchain stamped it into the binary:
the module version for 'go install github.com/cellarsim/cellar/cmd/cellctl@VERSION';
for a binary built in a checkout ('go build', 'go install ./cmd/cellctl'), the commit,
its time and whether the tree had uncommitted changes; then the Go version and the
platform. 'go run' stamps no commit, so its version is "(devel)".`,
		Example: `  cellctl version
  cellctl version --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(&output); err != nil {
				return err
			}
			bi, _ := debug.ReadBuildInfo()
			v := versionOf(bi)
			if output == outputJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// buildVersion says which build of cellctl this is: version --output json prints it.
type buildVersion struct {
	// Version is the main module's version: v1.2.3 when installed with
	// 'go install ...@v1.2.3', a pseudo-version (v0.0.0-TIME-COMMIT, +dirty for a
	// modified tree) when built in a checkout, "(devel)" when nothing was stamped.
	Version string `json:"version"`
	// Revision, Time and Modified are the version control state the binary was built
	// from, when it was built in a checkout: commit id, commit time (RFC 3339), and
	// whether the tree had uncommitted changes.
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

// versionOf reads the build information the Go toolchain embedded (nil: none).
func versionOf(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: "(devel)", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is version's one line:
//
//	cellctl v1.2.3 go1.26.0 linux/amd64
//	cellctl v0.0.0-20260101120000-0123456789ab+dirty (commit 0123456789ab of 2026-01-01T12:00:00Z, modified) go1.26.0 linux/amd64
func (v buildVersion) String() string {
	s := "cellctl " + v.Version
	if v.Revision != "" {
		commit := []string{"commit " + shortRevision(v.Revision)}
		if v.Time != "" {
			commit[0] += " of " + v.Time
		}
		if v.Modified {
			commit = append(commit, "modified")
		}
		s += " (" + strings.Join(commit, ", ") + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", s, v.Go, v.OS, v.Arch)
}

// shortRevision is the first 12 characters of a commit id, as Go's pseudo-versions
// spell it.
func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
