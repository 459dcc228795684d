package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/config"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/gitlab"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/hostfs"
	"github.com/gitlab-runner-auth/gitlab-runner-auth/internal/plan"
)

// expiryWarning is how early a personal access token's expiry is announced.
const expiryWarning = 30 * 24 * time.Hour

// fingerprint identifies a token in the state file without holding it.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte("gitlab-runner-auth personal access token\x00" + token))
	return hex.EncodeToString(sum[:16])
}

// checkTokens asks GitLab about each personal access token that is new or
// changed since the last run (GET /personal_access_tokens/self: scopes,
// expiry) and warns about what it cannot do. A token already checked costs
// no request: its recorded expiry is compared with today's date locally,
// so a steady-state restart still sends nothing with the PAT. It returns
// the records to keep in the state file.
// What GitLab said of each token (its scopes) goes into caps, for the plan.
func (en *engine) checkTokens(ctx context.Context, d *config.Desired, st *hostfs.State, caps map[string]plan.Capabilities) map[string]hostfs.TokenRecord {
	records := map[string]hostfs.TokenRecord{}
	var toCheck []*config.ClientConfig
	for _, c := range d.Clients {
		if c.PAT == "" {
			continue
		}
		fp := fingerprint(c.PAT)
		if rec, ok := st.Tokens[c.Key]; ok && rec.Fingerprint == fp {
			records[c.Key] = rec
			caps[c.Key] = plan.Capabilities{Known: !rec.Undescribed, Scopes: rec.Scopes}
			en.warnExpiry(c, rec.ExpiresAt)
			continue
		}
		toCheck = append(toCheck, c)
	}
	infos := make([]*gitlab.TokenInfo, len(toCheck))
	undescribed := make([]bool, len(toCheck))
	_ = en.each(ctx, len(toCheck), func(i int) error {
		c := toCheck[i]
		gl, err := en.gitlabFor(c.Key)
		if err != nil {
			return nil
		}
		info, answer, err := gl.DescribeToken(ctx)
		switch {
		case err != nil:
			en.warn("could not check the personal access token for %s (%v); checking again next run", c.URL, err)
		case answer == gitlab.TokenKnown:
			infos[i] = &info
		case answer == gitlab.TokenRevoked:
			en.warn("GitLab rejects the personal access token for %s: it is revoked or expired; replace it, or creating, adopting and removing runners fails", c.URL)
		case answer == gitlab.NoTokenSelf:
			// This GitLab cannot describe tokens: remembered, so the token
			// is not asked about again on every restart.
			undescribed[i] = true
		}
		return nil
	})
	for i, c := range toCheck {
		info := infos[i]
		if undescribed[i] {
			records[c.Key] = hostfs.TokenRecord{Fingerprint: fingerprint(c.PAT), Undescribed: true}
			continue
		}
		if info == nil {
			continue
		}
		rec := hostfs.TokenRecord{Fingerprint: fingerprint(c.PAT), Scopes: info.Scopes}
		if info.ExpiresAt != nil {
			rec.ExpiresAt = *info.ExpiresAt
		}
		if info.Revoked || !info.Active {
			en.warn("the personal access token for %s is revoked or inactive; replace it", c.URL)
		}
		en.warnExpiry(c, rec.ExpiresAt)
		var cannot []string
		if !info.HasScope("api", "create_runner") && c.RegistrationToken == "" {
			cannot = append(cannot, "create runners (needs create_runner or api)")
		}
		if !info.HasScope("api", "read_api") {
			cannot = append(cannot, "list runners (needs read_api or api), so a lost config cannot be recovered")
		}
		if !info.HasScope("api", "manage_runner") {
			cannot = append(cannot, "update, reset or delete runners by id (needs manage_runner or api)")
		}
		if len(cannot) > 0 {
			en.warn("the personal access token for %s (scopes: %s) cannot %s", c.URL, strings.Join(info.Scopes, ", "), strings.Join(cannot, "; cannot "))
		}
		records[c.Key] = rec
		caps[c.Key] = plan.Capabilities{Known: true, Scopes: rec.Scopes}
	}
	return records
}

func (en *engine) warnExpiry(c *config.ClientConfig, expiresAt string) {
	if expiresAt == "" {
		return
	}
	day, err := time.Parse("2006-01-02", expiresAt)
	if err != nil {
		return
	}
	switch left := day.Sub(en.o.Now()); {
	case left <= 0:
		en.warn("the personal access token for %s expired on %s; replace it", c.URL, expiresAt)
	case left < expiryWarning:
		en.warn("the personal access token for %s expires on %s (in %d days); rotate it before then", c.URL, expiresAt, int(left.Hours()/24)+1)
	}
}
