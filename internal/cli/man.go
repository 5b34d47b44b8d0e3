package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// WriteManPages writes the manual pages of wisp and of each of its commands
// (wisp.1, wisp-run.1, ...) into dir, generated from the cobra commands so
// that the pages say what the binary does. date is the pages' date (the
// package's build date, so that a rebuild gives the same bytes).
func WriteManPages(dir string, date time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := newRoot(io.Discard, io.Discard)
	root.DisableAutoGenTag = true
	hideHelpCommands(root)
	header := &doc.GenManHeader{
		Title:   "WISP",
		Section: "1",
		Date:    &date,
		Source:  "wisp " + version,
		Manual:  "wisp manual",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("manual pages: %w", err)
	}
	return nil
}

// hideHelpCommands keeps cobra's generated help and completion commands out
// of the manual: they describe the tool's mechanics, not wisp.
func hideHelpCommands(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			c.Hidden = true
		}
	}
}
