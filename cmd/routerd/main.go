// Command routerd runs a cellar front router: the S3 endpoint before a fleet of
// gateways, which sends each request to a gateway of its tenant's shard.
//
// Run it with --help for its flags. Every daemon shares its main, internal/daemon.Main;
// 'cellctl up' runs the same code as child processes of cellctl ('cellctl daemon router').
package main

import (
	"os"

	"github.com/cellarsim/cellar/frontrouter"
	"github.com/cellarsim/cellar/internal/daemon"
)

func main() {
	os.Exit(daemon.Main("routerd", frontrouter.Command()))
}
