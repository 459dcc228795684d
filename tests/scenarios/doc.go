// Package scenarios drives the sync engine (engine.Run) end to end against
// the GitLab simulator over real HTTP: what each run plans and does, what
// GitLab holds afterwards, which requests it saw, and what is on disk. The
// front ends' own behaviour (flags, exit codes, output) is tested beside
// them.
package scenarios
