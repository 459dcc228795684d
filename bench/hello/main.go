// Command hello is the start-up baseline of make bench: a Go hello world,
// built like register-runner, so the difference is what the tool itself
// costs before it does anything.
package main

import "fmt"

func main() { fmt.Println("hello") }
