package engine

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/tags"
)

// loadDeclared loads and checks everything declared for the instance: the
// template, every executor file (or the Overlay's content), descriptions
// and tags. It makes no request and no write.
func loadDeclared(ctx context.Context, o Options, prefixMissing bool) (*config.Desired, error) {
	serve := o.Policy.Serve
	d, err := config.Load(ctx, config.LoadOptions{Layout: hostfs.Layout{Prefix: o.Prefix, Instance: o.Instance}, Hostname: o.Hostname,
		Fleet: o.Fleet, Overlay: o.declared.overlay, Secrets: o.Secrets, PrefixMissing: prefixMissing, Tolerant: serve})
	if err != nil {
		return nil, err
	}
	if err := config.UniqueDescriptions(d, serve); err != nil {
		return nil, err
	}
	to := o.Tags
	to.Tolerant = serve
	if err := tags.Compute(ctx, d, to); err != nil {
		return nil, err
	}
	return d, nil
}

// disk is what a pass reads from the prefix, and the warnings of reading
// it (said once the declaration is known to be valid).
type disk struct {
	plan.Disk
	warnings []string
}

// readDisk reads the prefix's generated files — the live config, the
// state file, the system id — and this machine. It writes nothing: what
// the lineage table decides from it is carried out by the plan's host
// steps.
func (en *engine) readDisk() (disk, error) {
	o, l := en.o, en.l
	var ds disk
	live, err := hostfs.ReadLiveConfig(l, o.Secrets)
	if err != nil {
		return ds, err
	}
	st, warn, err := hostfs.ReadState(l)
	if err != nil {
		return ds, err
	}
	for _, pr := range st.Pending {
		o.Secrets.Add(pr.Token)
	}
	if warn != "" {
		ds.warnings = append(ds.warnings, warn)
	}
	m, hardwareRead := hostfs.Machine{ID: hostfs.ReadMachineID()}, false
	if o.Machine != nil {
		m, hardwareRead = *o.Machine, true
	}
	onDisk, err := readSystemID(l)
	if err != nil {
		return ds, err
	}
	host := hostfs.RecordOf(o.Hostname, m, "")
	// The hardware tells a rename from a clone: read only when the record
	// is new or the host name changed, else kept as recorded.
	if st.Host != nil && st.Host.Hostname == o.Hostname && !hardwareRead {
		host.Hardware = st.Host.Hardware
	} else if !hardwareRead {
		m.Hardware = hostfs.ReadHardware()
		host = hostfs.RecordOf(o.Hostname, m, "")
	}
	ds.Disk = plan.Disk{Live: live, State: st, SystemID: onDisk, Derived: hostfs.NewSystemID(m), Random: hostfs.RandomSystemID(), Host: host}
	return ds, nil
}

// readSystemID is the system id .runner_system_id holds ("" when the file
// is missing or holds none).
func readSystemID(l hostfs.Layout) (string, error) {
	data, _, err := hostfs.ReadCapped(l.SystemIDPath(), l.SystemIDPath(), 4096)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", err
	}
	id := strings.TrimSpace(string(data))
	if !hostfs.IsSystemID(id) {
		return "", nil
	}
	return id, nil
}

// evidence starts a pass's evidence from what the disk holds, once the
// declaration is valid: the pass's identity (plan.Identify) and the live
// config matched to what is declared.
func (en *engine) evidence(ds disk, d *config.Desired) (*Planned, error) {
	for _, w := range ds.warnings {
		en.warn("%s", w)
	}
	id := plan.Identify(ds.Disk, en.o.Hostname)
	for _, w := range id.Warnings {
		en.warn("%s", w)
	}
	en.systemID = id.SystemID
	ev := id.Evidence(d)
	ev.Now, ev.Policy = en.o.Now(), en.policy()
	for _, f := range ev.Prev.Foreign {
		en.warn("config entry %q (id %d) does not carry this host's identity; keeping it as is", f.Name, f.ID)
	}
	// A marker that outlives a killed or failed run: GitLab may still carry
	// out requests that run sent, so this run looks for their effects.
	_, statErr := os.Stat(en.l.IncompletePath())
	ev.Interrupted = statErr == nil || en.hints.interrupted
	return &Planned{ev: ev, live: id.Live, host: id.Host}, nil
}
