// Command wisp serves Python WSGI applications from an embedded CPython.
package main

import (
	"os"

	"wisp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
