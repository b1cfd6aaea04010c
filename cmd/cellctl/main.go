// Command cellctl starts, inspects and drives a cellar cluster: 'cellctl up' runs a
// whole local cluster as child processes of itself, 'cellctl status' shows every node
// as the gossip sees it. Run 'cellctl --help' for the commands and exit codes.
package main

import (
	"os"

	"github.com/cellarsim/cellar/cmd/cellctl/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
