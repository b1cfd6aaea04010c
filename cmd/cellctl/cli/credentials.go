package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/localcluster"
)

// outputEnv is the credentials command's third output: export lines for a shell.
const outputEnv = "env"

// credentialsReport is what credentials prints, with --output json as it is.
type credentialsReport struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	Region    string `json:"region"`
	// S3Endpoint, Auth and File are known for a cluster's credentials, not for --new.
	S3Endpoint string `json:"s3_endpoint,omitempty"`
	Auth       bool   `json:"auth"`
	File       string `json:"file,omitempty"`
}

func newCredentialsCommand() *cobra.Command {
	var dataDir, output string
	var fresh bool
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Show the S3 credentials of a cluster started by 'cellctl up'",
		Long: `credentials prints the S3 credentials of the cluster in --data-dir: the ones 'cellctl up'
made for it when it first started it (from crypto/rand), or the fixed ones it was
given, kept in DATA_DIR/credentials.json, readable by you only. It works whether the
cluster runs or not.

--output text (the default) is for a person; json for a program; env prints export
lines for a shell, which the aws CLI, boto3, s3cmd's environment mode and the AWS SDKs
read:

  eval "$(cellctl credentials --output env)"

--new prints a new pair instead, made from crypto/rand and kept nowhere: for a cluster
in containers, whose gateways read their credentials from CELLAR_ACCESS_KEY and
CELLAR_SECRET_KEY, set from a secret (see docs/docker.md).`,
		Example: `  cellctl credentials
  eval "$(cellctl credentials --data-dir /tmp/cellar --output env)"
  cellctl credentials --output json
  cellctl credentials --new --output env`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != outputText && output != outputJSON && output != outputEnv {
				return usageErrorf("--output %q: want text, json or env", output)
			}
			var rep credentialsReport
			if fresh {
				if cmd.Flags().Changed("data-dir") {
					return usageErrorf("--new makes credentials for no cluster: it takes no --data-dir")
				}
				ak, sk, err := cell.NewCredentials()
				if err != nil {
					return err
				}
				rep = credentialsReport{AccessKey: ak, SecretKey: sk, Region: cell.DefaultTopology().Region, Auth: true}
			} else {
				var err error
				if rep, err = clusterCredentialsOf(dataDir, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			return printCredentials(cmd.OutOrStdout(), rep, output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultDataDir, "data directory of a cluster started by 'cellctl up'")
	f.StringVarP(&output, "output", "o", outputText, "output format: text, json or env (export lines for a shell)")
	_ = cmd.RegisterFlagCompletionFunc("output",
		cobra.FixedCompletions([]string{outputText, outputJSON, outputEnv}, cobra.ShellCompDirectiveNoFileComp))
	f.BoolVar(&fresh, "new", false, "print a new pair, kept nowhere, instead of a cluster's")
	return cmd
}

// clusterCredentialsOf reads the credentials of the cluster in dataDir, with its
// endpoint, region and whether it checks signatures, as its cluster.json says. A
// credentials file others can read gets a warning on warn.
func clusterCredentialsOf(dataDir string, warn io.Writer) (credentialsReport, error) {
	c, err := localcluster.ReadCredentials(dataDir)
	if errors.Is(err, localcluster.ErrNoCredentials) {
		return credentialsReport{}, fmt.Errorf("no credentials in %s: 'cellctl up --data-dir %s' makes a cluster its own when it starts it", dataDir, dataDir)
	}
	if err != nil {
		return credentialsReport{}, err
	}
	path, _ := filepath.Abs(filepath.Join(dataDir, localcluster.CredentialsFileName))
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "warning: %s is readable by others (mode %s): 'chmod 600 %s'\n", path, fi.Mode().Perm(), path)
	}
	def := cell.DefaultTopology()
	rep := credentialsReport{AccessKey: c.AccessKey, SecretKey: c.SecretKey, Region: def.Region, Auth: def.Auth, File: path}
	if f, err := localcluster.ReadClusterFile(dataDir); err == nil {
		rep.S3Endpoint, rep.Region, rep.Auth = f.S3Endpoint, f.Region, f.Topology.Auth
	}
	return rep, nil
}

func printCredentials(out io.Writer, r credentialsReport, output string) error {
	switch output {
	case outputJSON:
		return printJSON(out, r)
	case outputEnv:
		fmt.Fprintf(out, "export AWS_ACCESS_KEY_ID=%s\n", shellQuote(r.AccessKey))
		fmt.Fprintf(out, "export AWS_SECRET_ACCESS_KEY=%s\n", shellQuote(r.SecretKey))
		fmt.Fprintf(out, "export AWS_DEFAULT_REGION=%s\n", shellQuote(r.Region))
		if r.S3Endpoint != "" {
			fmt.Fprintf(out, "export AWS_ENDPOINT_URL=%s\n", shellQuote(r.S3Endpoint))
		}
		return nil
	}
	if r.S3Endpoint != "" {
		fmt.Fprintf(out, "S3 endpoint: %s\n", r.S3Endpoint)
	}
	fmt.Fprintf(out, "Access key:  %s\nSecret key:  %s\nRegion:      %s\n", r.AccessKey, r.SecretKey, r.Region)
	if r.File != "" {
		fmt.Fprintf(out, "Kept in:     %s (readable by you only)\n", r.File)
	}
	if !r.Auth {
		fmt.Fprintln(out, "Authentication is off: the gateways serve unsigned requests too.")
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
