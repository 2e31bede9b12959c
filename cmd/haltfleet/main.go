// Command haltfleet turns fleets of Linux machines into halted firewalls.
package main

import (
	"os"

	"github.com/haltfleet/haltfleet/cmd/haltfleet/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:]))
}
