// Command gatewayd runs one cellar gateway: the S3 API and the router over the cells.
//
// Run it with --help for its flags. Every daemon shares its main, internal/daemon.Main;
// 'cellctl up' runs the same code as child processes of cellctl ('cellctl daemon gateway').
package main

import (
	"os"

	"github.com/cellarsim/cellar/gateway"
	"github.com/cellarsim/cellar/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("gatewayd", gateway.Command()))
}
