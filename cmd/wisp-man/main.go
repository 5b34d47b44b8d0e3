// Command wisp-man writes wisp's manual pages into a folder: `make deb` runs
// it, so the packaged pages come from the same commands as the binary.
//
//	wisp-man DIR
//
// SOURCE_DATE_EPOCH, when set, is the pages' date (reproducible builds).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"wisp/internal/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wisp-man DIR")
		os.Exit(2)
	}
	date := time.Now().UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wisp-man: SOURCE_DATE_EPOCH %q is not a number of seconds\n", s)
			os.Exit(2)
		}
		date = time.Unix(n, 0).UTC()
	}
	if err := cli.WriteManPages(os.Args[1], date); err != nil {
		fmt.Fprintf(os.Stderr, "wisp-man: %v\n", err)
		os.Exit(1)
	}
}
