// Command gatewayd runs one cellar gateway: the S3 API and the router over the cells.
//
// Run it with --help for its flags. All daemons share their main in cmd/cellctl/cli;
// 'cellctl up' runs the same code as child processes of cellctl.
package main

import (
	"os"

	"github.com/cellarsim/cellar/cell"
	"github.com/cellarsim/cellar/cmd/cellctl/cli"
)

func main() {
	os.Exit(cli.DaemonMain("gatewayd", cell.RoleGateway, os.Args[1:]))
}
