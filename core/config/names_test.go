package config

import "testing"

func TestDigitlessHostname(t *testing.T) {
	for in, want := range map[string]string{
		"node12": "node", "ip-10-0-0-12": "ip", "rack-04-node-12": "rack-node", "a_1_.b": "a_b",
		"12-34": "", "1234": "", "quartz": "quartz", "x1y2": "xy", "-n1-": "n",
	} {
		if got := DigitlessHostname(in); got != want {
			t.Errorf("DigitlessHostname(%q) = %q, want %q", in, got, want)
		}
	}
}
