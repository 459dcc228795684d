package core

import "testing"

func TestDigitlessHostname(t *testing.T) {
	for in, want := range map[string]string{
		"node12": "node", "ip-10-0-0-12": "ip", "rack-04-node-12": "rack-node", "a_1_.b": "a_b",
		"12-34": "", "1234": "", "quartz": "quartz", "x1y2": "xy", "-n1-": "n",
	} {
		if got := digitlessHostname(in); got != want {
			t.Errorf("digitlessHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDigitOnlyHostGetsNoEmptyTag(t *testing.T) {
	d := tagHost(t, "shell")
	d.Hostname = "10-0-0-12"
	o := tagOptions("")
	if err := computeTags(t.Context(), d, o); err != nil {
		t.Fatal(err)
	}
	for _, tag := range d.Executors[0].Tags {
		if tag == "" || tag == "---" {
			t.Fatalf("tags %q hold an empty digit-less host name", d.Executors[0].Tags)
		}
	}
	if err := validateNames("10-0-0-12", "main"); err != nil {
		t.Fatal(err)
	}
	if err := validateNames("ip-10-0-0-12", "ip"); err == nil {
		t.Fatal("instance ip equals the digit-less host name of ip-10-0-0-12 but was accepted")
	}
}
