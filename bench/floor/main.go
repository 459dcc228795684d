// Command floor is the steady-state baseline of make bench: it sends
// nothing but the verify requests a steady-state restart must send (one
// per token, POST /api/v4/runners/verify, at the given concurrency over
// kept-alive connections) and exits. register-runner's steady state is
// measured against it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

func main() {
	url := flag.String("url", "", "GitLab base URL")
	tokens := flag.String("tokens", "", "file with one runner token per line")
	systemID := flag.String("system-id", "", "system_id sent with each verify")
	concurrency := flag.Int("concurrency", 16, "requests in parallel")
	flag.Parse()
	f, err := os.Open(*tokens)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(2)
	}
	var list []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t := sc.Text(); t != "" {
			list = append(list, t)
		}
	}
	f.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency}}
	sem := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for _, tok := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			body, _ := json.Marshal(map[string]string{"token": tok, "system_id": *systemID})
			resp, err := client.Post(*url+"/api/v4/runners/verify", "application/json", bytes.NewReader(body))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "floor: %d of %d verifies failed\n", failed, len(list))
		os.Exit(1)
	}
}
