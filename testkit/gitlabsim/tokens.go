package gitlabsim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"math/big"
	"strconv"
	"strings"
)

// tokenAlphabet is Devise.friendly_token's: URL-safe base64 with l, I, O
// and 0 replaced (by s, x, y, z), so those four never appear.
const tokenAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ123456789_-"

// runnerTypeNumber is the enum value GitLab stores (app/models/ci/runner.rb
// `enum runner_type: { instance_type: 1, group_type: 2, project_type: 3 }`).
func runnerTypeNumber(rt string) int {
	switch rt {
	case "group_type":
		return 2
	case "project_type":
		return 3
	}
	return 1
}

// runnerToken returns a token in the shape GitLab gives this runner.
// app/models/ci/runner.rb `prefix_for_new_and_legacy_runner`: runners
// created by a user get "glrt-" (MR 110275); with the partition prefix
// (Profile.PartitionTokenPrefix, MR 168017) runners that came through a
// registration token get "t<type>_" and created ones "glrt-t<type>_" (it
// keeps tokens unique across the partitioned ci_runners table). With
// routable set, the rest follows Authn::TokenField::Generator::RoutableToken:
// base64url(routing payload + random bytes) "." two base-36 length digits
// and a 7-digit base-36 CRC32.
func runnerToken(rt string, legacy, partition, routable bool) string {
	prefix := ""
	if partition {
		prefix = fmt.Sprintf("t%d_", runnerTypeNumber(rt))
	}
	if !legacy {
		prefix = "glrt-" + prefix
	}
	if !routable {
		return prefix + randomString(tokenAlphabet, 20)
	}
	random := []byte(randomString(tokenAlphabet, 16))
	payload := "c:1\no:1\n" + string(random) + string([]byte{byte(len(random))})
	b64 := base64.RawURLEncoding.EncodeToString([]byte(payload))
	encoded := prefix + b64 + "." + leftPad(strconv.FormatInt(int64(len(b64)), 36), 2)
	crc := strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(encoded))), 36)
	return encoded + leftPad(crc, 7)
}

func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

func randomString(alphabet string, n int) string {
	var b strings.Builder
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < n; i++ {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b.WriteByte(alphabet[v.Int64()])
	}
	return b.String()
}

// createdRunnerToken tells whether a token came from the runner creation
// workflow (lib/api/ci/runner.rb checks CREATED_RUNNER_TOKEN_PREFIX on
// verify: such runners are not "contacted" until they poll for jobs).
func createdRunnerToken(token string) bool { return strings.HasPrefix(token, "glrt-") }
