package gitlabsim

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The runner attributes GitLab accepts, in two steps as GitLab checks them:
// Grape coerces the parameters (a bad type is 400 {"error": "<param> is
// invalid"}), then Ci::Runner validates the model (app/models/ci/runner.rb).

// tagListMaxLength is Ci::Runner::TAG_LIST_MAX_LENGTH.
const tagListMaxLength = 50

// fieldErrors are a model's errors by attribute (ActiveModel::Errors#messages).
type fieldErrors map[string][]string

func (fe fieldErrors) add(attr, msg string) { fe[attr] = append(fe[attr], msg) }

// sentence is errors.full_messages.to_sentence, how POST /user/runners
// reports them (bad_request!(result.errors.to_sentence)).
func (fe fieldErrors) sentence() string {
	var attrs []string
	for a := range fe {
		attrs = append(attrs, a)
	}
	sort.Strings(attrs)
	var msgs []string
	for _, a := range attrs {
		human := strings.ToUpper(a[:1]) + strings.ReplaceAll(a[1:], "_", " ")
		for _, m := range fe[a] {
			msgs = append(msgs, human+" "+m)
		}
	}
	switch len(msgs) {
	case 0:
		return ""
	case 1:
		return msgs[0]
	case 2:
		return msgs[0] + " and " + msgs[1]
	}
	return strings.Join(msgs[:len(msgs)-1], ", ") + ", and " + msgs[len(msgs)-1]
}

// paramErr is a Grape parameter error message ("tag_list is invalid").
type paramErr string

// settingKeys are the writable attributes of PUT /runners/:id, in the order
// of its `at_least_one_of`.
var settingKeys = []string{"description", "active", "paused", "tag_list", "run_untagged", "locked", "access_level", "maximum_timeout", "maintenance_note"}

// exclusive is Grape's `mutually_exclusive`: "active, paused are mutually exclusive".
func exclusive(p map[string]any, keys ...string) string {
	n := 0
	for _, k := range keys {
		if _, ok := p[k]; ok {
			n++
		}
	}
	if n > 1 {
		return strings.Join(keys, ", ") + " are mutually exclusive"
	}
	return ""
}

// atLeastOne is Grape's `at_least_one_of`.
func atLeastOne(p map[string]any, keys ...string) string {
	for _, k := range keys {
		if _, ok := p[k]; ok {
			return ""
		}
	}
	return strings.Join(keys, ", ") + " are missing, at least one parameter must be provided"
}

// coerceSettings applies the parameters to r the way Grape coerces them.
// timeoutTooShort is set for a maximum_timeout below 600 (0 included).
func coerceSettings(r *Runner, p map[string]any, timeoutTooShort *bool) (changedTags bool, err paramErr) {
	if v, ok := p["description"]; ok {
		s, _ := v.(string)
		r.Description = s
	}
	if v, ok := p["tag_list"]; ok {
		tags, ok := coerceTags(v)
		if !ok {
			return false, "tag_list is invalid"
		}
		r.TagList, changedTags = tags, true
	}
	for key, dst := range map[string]*bool{"run_untagged": &r.RunUntagged, "locked": &r.Locked, "paused": &r.Paused} {
		if v, ok := p[key]; ok {
			b, ok := boolParam(v)
			if !ok {
				return false, paramErr(key + " is invalid")
			}
			*dst = b
		}
	}
	if v, ok := p["active"]; ok {
		b, ok := boolParam(v)
		if !ok {
			return false, "active is invalid"
		}
		r.Paused = !b
	}
	if v, ok := p["access_level"]; ok {
		s, _ := v.(string)
		if s != "not_protected" && s != "ref_protected" {
			return false, "access_level does not have a valid value"
		}
		r.AccessLevel = s
	}
	if v, ok := p["maximum_timeout"]; ok {
		// Grape lets an optional Integer be null, and coerces a form's empty
		// string to nil: the runner's maximum_timeout is then cleared
		// (`validates :maximum_timeout, allow_nil: true`). Omitted, it stays.
		if str, isStr := v.(string); v == nil || (isStr && str == "") {
			r.MaximumTimeout = 0
		} else {
			n, ok := intParam(p, "maximum_timeout")
			if !ok {
				return false, "maximum_timeout is invalid"
			}
			if n < 600 {
				// 0 here is a value, not "none": it fails the validation
				// below, which reads MaximumTimeout 0 as nil.
				*timeoutTooShort = true
			}
			r.MaximumTimeout = n
		}
	}
	if v, ok := p["maintenance_note"]; ok {
		s, _ := v.(string)
		r.MaintenanceNote = s
	}
	return changedTags, ""
}

// coerceTags is API::Validations::Types::CommaSeparatedToArray: a string
// or every element of an array is split on commas and stripped, so
// "a,b" and ["a,b"] both become two tags.
func coerceTags(v any) ([]string, bool) {
	var raw []string
	switch t := v.(type) {
	case string:
		raw = []string{t}
	case []string:
		raw = t
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			raw = append(raw, s)
		}
	default:
		return nil, false
	}
	tags := []string{}
	for _, s := range raw {
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				tags = append(tags, x)
			}
		}
	}
	return tags, true
}

// validateRunner is Ci::Runner's validations that a client can trip.
// MaximumTimeout 0 is nil (no limit), which the validation allows.
func validateRunner(r *Runner, tagsChanged, timeoutTooShort bool) fieldErrors {
	errs := fieldErrors{}
	// tag_constraints
	if len(r.TagList) == 0 && !r.RunUntagged {
		errs.add("tags_list", "can not be empty when runner is not allowed to pick untagged jobs")
	}
	if tagsChanged && len(r.TagList) > tagListMaxLength {
		errs.add("tags_list", fmt.Sprintf("Too many tags specified. Please limit the number of tags to %d", tagListMaxLength))
	}
	if len(r.Description) > 1024 {
		errs.add("description", "is too long (maximum is 1024 characters)")
	}
	if timeoutTooShort || r.MaximumTimeout != 0 && r.MaximumTimeout < 600 {
		errs.add("maximum_timeout", "needs to be at least 10 minutes")
	}
	if len(r.MaintenanceNote) > 1024 {
		errs.add("maintenance_note", "is too long (maximum is 1024 characters)")
	}
	return errs
}

// applySettings coerces and validates: a Grape error, or the model's.
func applySettings(r *Runner, p map[string]any, isNew bool) (paramErr, fieldErrors) {
	var tooShort bool
	changed, perr := coerceSettings(r, p, &tooShort)
	if perr != "" {
		return perr, nil
	}
	if errs := validateRunner(r, changed || isNew, tooShort); len(errs) > 0 {
		return "", errs
	}
	return "", nil
}

func intParam(p map[string]any, key string) (int64, bool) {
	switch v := p[key].(type) {
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}

// boolParam accepts what Grape's Boolean coercion accepts.
func boolParam(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch strings.ToLower(b) {
		case "true", "1", "yes", "t", "y", "on":
			return true, true
		case "false", "0", "no", "f", "n", "off":
			return false, true
		}
	case json.Number:
		switch b.String() {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	}
	return false, false
}
