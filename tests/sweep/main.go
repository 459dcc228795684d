// Command sweep is the last step of `make test`: it reads every output the
// suite recorded in the transcript folder (stdout, stderr, JSON reports,
// diffs, ansible-playbook -vvv output and results) and fails if any holds
// a secret: a fixed test PAT or registration token, or anything shaped like
// a runner token.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/testkit/coretest"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sweep TRANSCRIPT-DIR MIN-FILES")
		os.Exit(2)
	}
	dir := os.Args[1]
	min, err := strconv.Atoi(os.Args[2])
	if err != nil || min < 1 {
		fmt.Fprintf(os.Stderr, "sweep: MIN-FILES must be a positive number, not %q\n", os.Args[2])
		os.Exit(2)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(1)
	}
	if len(files) < min {
		fmt.Fprintf(os.Stderr, "sweep: only %d transcripts in %s (want at least %d): the suite did not record its outputs\n", len(files), dir, min)
		os.Exit(1)
	}
	var size int64
	leaks := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sweep:", err)
			os.Exit(1)
		}
		size += int64(len(data))
		if leak := coretest.FindSecret(string(data)); leak != "" {
			fmt.Fprintf(os.Stderr, "sweep: %s holds a %s\n", filepath.Base(f), leak)
			leaks++
		}
	}
	if leaks > 0 {
		os.Exit(1)
	}
	fmt.Printf("sweep: %d transcripts, %d bytes of output: no secret found\n", len(files), size)
}
